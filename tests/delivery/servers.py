#!/usr/bin/env python3
"""Loopback receivers for pbc's delivery tests: Slack (incoming webhook and Web API),
PagerDuty Events API v2, a signed webhook, and SMTP (aiosmtpd, optionally STARTTLS).

Each request is checked against the service's documented shape, independently of pbc's
code, and recorded as one JSON line in DIR/received.jsonl:
  {"route", "ok": bool, "problems": [...], "acked": bool, "headers": {...}, "body": ...}
Mail goes to DIR/mail.jsonl: {"from", "to", "subject", "message_id", "parts": [types],
"text", "html", "starttls": bool}.

Started by the test: prints {"http": PORT, "smtp": PORT} on its first line, then serves
until killed. `touch DIR/hang` makes /hook read the request, record it, and never answer
(until the file is removed); `touch DIR/fail` makes every HTTP route answer 503.
"""

import argparse
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()

BLOCK_TYPES = {"header", "section", "actions", "context", "divider", "image", "rich_text", "input"}


def record(entry):
    with LOCK:
        with open(os.path.join(ARGS.dir, "received.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")


def check_blocks(msg, problems):
    """Slack Block Kit: a fallback `text` and a list of well-formed blocks."""
    if not isinstance(msg.get("text"), str) or not msg["text"]:
        problems.append("no fallback text")
    blocks = msg.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        problems.append("no blocks")
        return
    if len(blocks) > 50:
        problems.append("more than 50 blocks")
    for b in blocks:
        t = b.get("type")
        if t not in BLOCK_TYPES:
            problems.append(f"unknown block type {t!r}")
        if t == "header":
            txt = b.get("text", {})
            if txt.get("type") != "plain_text" or not txt.get("text") or len(txt["text"]) > 150:
                problems.append("header needs plain_text of at most 150 characters")
        if t == "section":
            if "text" not in b and "fields" not in b:
                problems.append("section without text or fields")
            for fld in b.get("fields", []):
                if fld.get("type") not in ("mrkdwn", "plain_text") or len(fld.get("text", "")) > 2000:
                    problems.append("bad section field")
            if len(b.get("fields", [])) > 10:
                problems.append("more than 10 fields")
        if t == "actions":
            for el in b.get("elements", []):
                # A link button has a url; an interactive one an action_id and a value.
                if el.get("type") == "button" and not str(el.get("url", "")).startswith("http") \
                        and not (el.get("action_id") and el.get("value")):
                    problems.append("button without url or action_id and value")
        if t == "input":
            if b.get("label", {}).get("type") != "plain_text" or not b.get("element", {}).get("action_id"):
                problems.append("input needs a plain_text label and an element with an action_id")
    if blocks[0].get("type") != "header":
        problems.append("first block is not a header")


def check_pagerduty(ev, problems):
    """Events API v2 (developer.pagerduty.com, Send an Alert Event)."""
    if ev.get("routing_key") != ARGS.pd_key:
        problems.append("wrong routing_key")
    action = ev.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        problems.append(f"bad event_action {action!r}")
    dk = ev.get("dedup_key")
    if not isinstance(dk, str) or not dk or len(dk) > 255:
        problems.append("dedup_key missing or too long")
    if action == "trigger":
        p = ev.get("payload")
        if not isinstance(p, dict):
            problems.append("trigger without payload")
            return
        if not isinstance(p.get("summary"), str) or not p["summary"] or len(p["summary"]) > 1024:
            problems.append("payload.summary missing or over 1024 characters")
        if not isinstance(p.get("source"), str) or not p["source"]:
            problems.append("payload.source missing")
        if p.get("severity") not in ("critical", "error", "warning", "info"):
            problems.append(f"bad payload.severity {p.get('severity')!r}")
        ts = p.get("timestamp")
        if ts is not None and not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", ts):
            problems.append("payload.timestamp is not ISO 8601")
        for link in ev.get("links", []):
            if not str(link.get("href", "")).startswith("http"):
                problems.append("link without href")


def check_signature(headers, raw, problems):
    ts = headers.get("X-Pbc-Timestamp")
    sig = headers.get("X-Pbc-Signature-256")
    if not ts or not sig:
        problems.append("unsigned")
        return
    try:
        age = abs(time.time() - int(ts))
    except ValueError:
        problems.append("timestamp is not an integer")
        return
    if age > 300:
        problems.append("timestamp older than 5 minutes")
    want = "sha256=" + hmac.new(ARGS.hook_secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        problems.append("signature mismatch")
    if not headers.get("X-Pbc-Delivery"):
        problems.append("no X-Pbc-Delivery")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_CONNECT(self):
        """A forward proxy's tunnel (what clients use through HTTPS_PROXY/HTTP_PROXY): the
        hosts of the test (`*.example.invalid`, which no resolver knows) lead back to this
        server; the tunnel is recorded as route CONNECT with its target."""
        import socket
        host, _, port = self.path.rpartition(":")
        record({"route": "CONNECT", "target": self.path, "ok": True, "acked": True, "problems": []})
        if host.endswith(".example.invalid"):
            dest = ("127.0.0.1", self.server.server_address[1])
        else:
            dest = (host, int(port or 80))
        try:
            up = socket.create_connection(dest, timeout=30)
        except OSError:
            return self.answer(502, {"error": "bad gateway"})
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        down = self.connection

        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(up, down), daemon=True)
        t.start()
        pump(down, up)
        t.join(30)
        up.close()
        self.close_connection = True

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        problems = []
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
            problems.append("body is not JSON")
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            problems.append("Content-Type is not application/json")
        keep = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith(("x-pbc", "idempotency", "authorization"))}
        route = self.path.split("?")[0]
        entry = {"route": route, "problems": problems, "headers": keep, "body": body, "acked": False, "host": self.headers.get("Host")}
        if os.path.exists(os.path.join(ARGS.dir, "fail")):
            entry["ok"] = False
            record(entry)
            return self.answer(503, {"error": "down for the test"})
        if route == "/hook" and os.path.exists(os.path.join(ARGS.dir, "hang")):
            entry["ok"] = not problems
            entry["hung"] = True
            record(entry)
            while os.path.exists(os.path.join(ARGS.dir, "hang")):
                time.sleep(0.05)
            self.close_connection = True
            return
        if body is None:
            code, answer = 400, {"error": "invalid_payload"}
        elif route == "/slack/webhook":
            check_blocks(body, problems)
            code, answer = (400, "invalid_payload") if problems else (200, "ok")
        elif route == "/slack/api/chat.postMessage":
            if self.headers.get("Authorization") != f"Bearer {ARGS.slack_token}":
                code, answer = 200, {"ok": False, "error": "invalid_auth"}
                problems.append("bad token")
            else:
                check_blocks(body, problems)
                if not body.get("channel"):
                    problems.append("no channel")
                code, answer = 200, ({"ok": False, "error": "invalid_blocks"} if problems else {"ok": True, "channel": body["channel"], "ts": "1.2"})
        elif route == "/pd/v2/enqueue":
            check_pagerduty(body, problems)
            if problems:
                code, answer = 400, {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
            else:
                code, answer = 202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}
        elif route == "/hook":
            check_signature(self.headers, raw, problems)
            code, answer = (401, {"error": "bad signature"}) if problems else (200, {"ok": True})
        else:
            code, answer = 404, {"error": "no such route"}
            problems.append("unknown route")
        entry["ok"] = not problems
        entry["acked"] = 200 <= code < 300 and (not isinstance(answer, dict) or answer.get("ok", True) is not False)
        record(entry)
        ctype = "text/plain" if isinstance(answer, str) else "application/json"
        self.answer(code, answer, ctype)


class Mail:
    def __init__(self):
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = [p.get_content_type() for p in msg.walk() if not p.is_multipart()]
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        entry = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": msg["Subject"],
            "message_id": msg["Message-ID"],
            "parts": parts,
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
            "starttls": bool(session.ssl),
        }
        with self.lock:
            with open(os.path.join(ARGS.dir, "mail.jsonl"), "a") as f:
                f.write(json.dumps(entry) + "\n")
        return "250 Message accepted for delivery"


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--slack-token", default="xoxb-test-token")
    ap.add_argument("--pd-key", default="R0UT1NGKEY0123456789abcdefABCDEF")
    ap.add_argument("--hook-secret", default="s3cret-signing-key")
    ap.add_argument("--smtp", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ARGS = ap.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    ports = {"http": httpd.server_address[1]}
    if ARGS.smtp:
        from aiosmtpd.controller import Controller
        kw = {}
        if ARGS.tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
            kw = {"tls_context": ctx, "require_starttls": True}
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        ctl = Controller(Mail(), hostname="127.0.0.1", port=port, server_hostname="localhost", **kw)
        ctl.start()
        ports["smtp"] = port
    print(json.dumps(ports), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
