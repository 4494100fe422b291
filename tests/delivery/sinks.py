#!/usr/bin/env python3
"""Loopback receivers for pbc's audit-sink tests, each checking what it receives against the
service's documented format, independently of pbc's code:

- S3: moto's server (ThreadedMotoServer), with bucket BUCKET created with Object Lock
  enabled; GET /inspect/s3 on the HTTP port lists its objects (key, body, metadata, Object
  Lock mode and retain-until date) through boto3.
- OTLP/HTTP: POST /v1/traces and /v1/logs, decoded with opentelemetry-proto's protobuf
  messages; recorded in DIR/otlp.jsonl.
- CloudTrail Lake: POST /PutAuditEvents, its SigV4 signature recomputed with botocore and the
  request checked against the PutAuditEvents shape; recorded in DIR/cloudtrail.jsonl.
- Syslog: RFC 5424 over TCP with octet-counting framing (RFC 6587), optionally TLS;
  recorded in DIR/syslog.jsonl.

Prints {"http", "s3", "syslog"} ports on its first line, then serves until killed.
`touch DIR/hang` makes the OTLP and CloudTrail routes record a request and never answer
(until the file is removed).
"""

import argparse
import hashlib
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ARGS = None
LOCK = threading.Lock()


def record(name, entry):
    with LOCK:
        with open(os.path.join(ARGS.dir, name), "a") as f:
            f.write(json.dumps(entry) + "\n")


def hang():
    while os.path.exists(os.path.join(ARGS.dir, "hang")):
        time.sleep(0.05)


# --- OTLP -----------------------------------------------------------------------------

def any_value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def otlp(path, body, problems):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    out = {"route": path, "spans": [], "logs": [], "resource": {}}
    if path == "/v1/traces":
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            out["resource"] = attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    if len(s.trace_id) != 16 or len(s.span_id) != 8:
                        problems.append("bad trace or span id length")
                    if s.end_time_unix_nano < s.start_time_unix_nano or s.start_time_unix_nano == 0:
                        problems.append("bad span times")
                    out["spans"].append({
                        "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                        "parent": s.parent_span_id.hex(), "name": s.name,
                        "events": [e.name for e in s.events], "status": s.status.code,
                        "attributes": attrs(s.attributes),
                    })
    else:
        req = ExportLogsServiceRequest()
        req.ParseFromString(body)
        for rl in req.resource_logs:
            out["resource"] = attrs(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    if len(r.trace_id) != 16 or len(r.span_id) != 8:
                        problems.append("log record without trace context")
                    out["logs"].append({
                        "trace_id": r.trace_id.hex(), "span_id": r.span_id.hex(),
                        "body": any_value(r.body), "severity": r.severity_number,
                        "attributes": attrs(r.attributes), "time": r.time_unix_nano,
                    })
    if out["resource"].get("service.name") is None:
        problems.append("no service.name")
    return out


# --- CloudTrail Lake --------------------------------------------------------------------

AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def check_sigv4(handler, body, problems):
    """Recomputes the signature with botocore's SigV4 signer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    m = AUTH.match(handler.headers.get("Authorization", ""))
    if not m:
        problems.append("no SigV4 Authorization header")
        return
    key, _, region, service, signed, signature = m.groups()
    if key != ARGS.access_key:
        problems.append("wrong access key id")
    if service != "cloudtrail-data":
        problems.append(f"signed for service {service}")
    if region != ARGS.region:
        problems.append(f"signed for region {region}")
    headers = {h: handler.headers.get(h, "") for h in signed.split(";")}
    url = f"http://{handler.headers.get('Host')}{handler.path}"
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    req.context["timestamp"] = handler.headers.get("X-Amz-Date", "")
    auth = SigV4Auth(Credentials(ARGS.access_key, ARGS.secret_key), service, region)
    canonical = auth.canonical_request(req)
    expected = auth.signature(auth.string_to_sign(req, canonical), req)
    if expected != signature:
        problems.append("SigV4 signature does not verify")


def check_put_audit_events(query, body, problems):
    arn = query.get("channelArn", [""])[0]
    if not re.match(r"^arn:aws:cloudtrail:[a-z0-9-]+:\d{12}:channel/.+$", arn):
        problems.append(f"bad channelArn {arn!r}")
    try:
        doc = json.loads(body)
    except ValueError:
        problems.append("body is not JSON")
        return []
    events = doc.get("auditEvents")
    if not isinstance(events, list) or not 1 <= len(events) <= 100:
        problems.append("auditEvents must hold 1 to 100 events")
        return []
    out = []
    for ev in events:
        if set(ev) - {"id", "eventData", "eventDataChecksum"}:
            problems.append("unknown auditEvent field")
        if not re.match(r"^[-_A-Za-z0-9]{1,128}$", ev.get("id", "")):
            problems.append("bad id")
        data = ev.get("eventData")
        if not isinstance(data, str):
            problems.append("eventData is not a string")
            continue
        if ev.get("eventDataChecksum") != hashlib.sha256(data.encode()).hexdigest():
            problems.append("eventDataChecksum does not match")
        d = json.loads(data)
        for f in ("version", "userIdentity", "eventSource", "eventName", "eventTime", "UID",
                  "recipientAccountId"):
            if f not in d:
                problems.append(f"eventData without {f}")
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", d.get("eventTime", "")):
            problems.append("eventTime is not yyyy-MM-ddTHH:mm:ssZ")
        if not {"type", "principalId"} <= set(d.get("userIdentity", {})):
            problems.append("userIdentity needs type and principalId")
        out.append({"id": ev["id"], "data": d})
    return out


class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass  # the client was killed while it waited (the kill -9 test)

    def do_GET(self):
        if self.path == "/inspect/s3":
            import boto3
            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{S3_PORT}",
                              region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
            objs = []
            for o in s3.list_objects_v2(Bucket=ARGS.bucket).get("Contents", []):
                h = s3.get_object(Bucket=ARGS.bucket, Key=o["Key"])
                until = h.get("ObjectLockRetainUntilDate")
                objs.append({"key": o["Key"], "body": h["Body"].read().decode(),
                             "metadata": h.get("Metadata", {}),
                             "lock_mode": h.get("ObjectLockMode"),
                             "retain_until": until.isoformat() if until else None})
            return self.answer(200, {"objects": objs})
        self.answer(404, {})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        u = urlsplit(self.path)
        problems = []
        if u.path in ("/v1/traces", "/v1/logs"):
            if self.headers.get("Content-Type") != "application/x-protobuf":
                problems.append("content type is not application/x-protobuf")
            if ARGS.otlp_auth and self.headers.get("Authorization") != ARGS.otlp_auth:
                problems.append("wrong Authorization")
            out = otlp(u.path, body, problems)
            out["ok"] = not problems
            out["problems"] = problems
            record("otlp.jsonl", out)
            hang()
            return self.answer(200, {})
        if u.path == "/PutAuditEvents":
            check_sigv4(self, body, problems)
            events = check_put_audit_events(parse_qs(u.query), body, problems)
            record("cloudtrail.jsonl", {"ok": not problems, "problems": problems,
                                        "events": events})
            hang()
            if problems:
                return self.answer(400, {"message": "; ".join(problems)})
            return self.answer(200, {"successful": [{"id": e["id"], "eventID": e["id"]}
                                                    for e in events], "failed": []})
        self.answer(404, {})


# --- syslog ---------------------------------------------------------------------------

HEADER = re.compile(
    rb"^<(\d{1,3})>1 (\S+) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) ")
SD = re.compile(r'([^ =\]"]+)="((?:[^"\\\]]|\\["\\\]])*)"')


def parse_syslog(msg):
    m = HEADER.match(msg)
    if not m:
        return {"ok": False, "problems": ["not an RFC 5424 header"], "raw": msg.decode("utf-8", "replace")}
    rest = msg[m.end():].decode("utf-8")
    problems = []
    if not rest.startswith("["):
        problems.append("no structured data")
    end = rest.index("] ") if "] " in rest else -1
    sd_text, text = rest[1:end], rest[end + 2:]
    sd_id, _, params = sd_text.partition(" ")
    if not text.startswith("\ufeff"):
        problems.append("message without BOM")
    pri = int(m.group(1))
    return {"ok": not problems, "problems": problems, "facility": pri // 8, "severity": pri % 8,
            "timestamp": m.group(2).decode(), "hostname": m.group(3).decode(),
            "app": m.group(4).decode(), "msgid": m.group(6).decode(), "sd_id": sd_id,
            "sd": dict(SD.findall(params)), "msg": text.lstrip("\ufeff")}


def serve_syslog(conn, tls_ctx):
    try:
        if tls_ctx:
            conn = tls_ctx.wrap_socket(conn, server_side=True)
        buf = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            while True:
                sp = buf.find(b" ")
                if sp <= 0:
                    break
                n = int(buf[:sp])
                if len(buf) < sp + 1 + n:
                    break
                msg, buf = buf[sp + 1:sp + 1 + n], buf[sp + 1 + n:]
                record("syslog.jsonl", parse_syslog(msg))
        if buf:
            record("syslog.jsonl", {"ok": False, "problems": ["a cut frame"]})
    except (OSError, ValueError, ssl.SSLError) as e:
        record("syslog.jsonl", {"ok": False, "problems": [f"connection: {e}"]})
    finally:
        conn.close()


def syslog_listener(sock, tls_ctx):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_syslog, args=(conn, tls_ctx), daemon=True).start()


S3_PORT = 0


def quiet():
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def main():
    global ARGS, S3_PORT
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--bucket", default="trail")
    p.add_argument("--access-key", default="AKIDPBCTEST")
    p.add_argument("--secret-key", default="pbc-test-secret")
    p.add_argument("--region", default="eu-west-1")
    p.add_argument("--otlp-auth")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    ARGS = p.parse_args()
    quiet()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "x")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "x")
    from moto.server import ThreadedMotoServer
    import boto3
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    S3_PORT = moto.get_host_and_port()[1]
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{S3_PORT}", region_name="us-east-1",
                 aws_access_key_id="x", aws_secret_access_key="x").create_bucket(
        Bucket=ARGS.bucket, ObjectLockEnabledForBucket=True)

    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()

    tls_ctx = None
    if ARGS.tls_cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    threading.Thread(target=syslog_listener, args=(sock, tls_ctx), daemon=True).start()

    print(json.dumps({"http": http.server_address[1], "s3": S3_PORT,
                      "syslog": sock.getsockname()[1]}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
