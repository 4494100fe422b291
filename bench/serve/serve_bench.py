#!/usr/bin/env python3
"""Benchmarks of `pbc serve` on loopback (docs/performance.md, "pbc serve"). Standard library
only; run by hand, never by a test:

    python3 bench/serve/serve_bench.py --pbc target/release/pbc [--runs 1000] [--clients 100]

It starts the real binary on 127.0.0.1:0 with a fresh state directory and measures:

1. 1,000 runs waiting at a manual gate, started by 100 concurrent clients (POST /v1/runs):
   runs started per second; the server's resident memory (VmRSS) idle and with every run
   waiting.
2. The 1,000 approvals decided by 100 concurrent clients (POST /v1/approvals/{id}/approve):
   the request's latency, and "approve -> next stage started", from the audit entry
   `approval-granted` to the gated stage's `stage-started` (the server's own times, in ms),
   p50 / p99 / max.
3. Events: 100 clients post signed events to a playbook whose one stage is a fixture agent
   (a python3 command executor, runtime/tests/fixtures/action.py): events accepted per
   second, and runs finished per second until the last one ends.

Clients and server share the machine: on 2 cores the clients' threads take CPU from the
server, so the figures are a floor for the server.
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

SECRET = "bench-event-secret"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def token_hash(t):
    return hashlib.sha256(t.encode()).hexdigest()


def project(d):
    fixture = os.path.join(ROOT, "runtime/tests/fixtures/action.py")
    with open(os.path.join(d, "gate.yaml"), "w") as f:
        f.write("""apiVersion: agenticops/v1
kind: Playbook
metadata: {name: gated}
spec:
  trigger: {event: gated}
  stages:
    - name: apply
      action: k8s:apply
      approval: manual
      approvers: [{role: sre}]
""")
    with open(os.path.join(d, "ping.yaml"), "w") as f:
        f.write("""apiVersion: agenticops/v1
kind: Playbook
metadata: {name: ping}
spec:
  trigger: {event: ping}
  stages:
    - name: notify
      action: k8s:apply
""")
    with open(os.path.join(d, ".pbc.yaml"), "w") as f:
        f.write(f"""roles:
  sre: [sam@example.com]
serve:
  event-secret-env: PBC_BENCH_EVENT_SECRET
  agents: agents.yaml
  tokens:
    - {{user: ann@example.com, sha256: {token_hash('ann-token')}}}
    - {{user: sam@example.com, sha256: {token_hash('sam-token')}}}
""")
    with open(os.path.join(d, "agents.yaml"), "w") as f:
        f.write(f'actions:\n  "k8s:apply": {{command: [python3, {fixture}], timeout: 60s}}\n')


class Server:
    def __init__(self, pbc, d):
        env = dict(os.environ, PBC_BENCH_EVENT_SECRET=SECRET, ACTION_LOG=os.path.join(d, "actions.log"))
        env.pop("PBC_STATE_DIR", None)
        self.p = subprocess.Popen(
            [pbc, "serve", ".", "--listen", "127.0.0.1:0", "--state", "st", "--log-format", "text"],
            cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = None
        for line in self.p.stderr:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        if not self.url:
            sys.exit("pbc serve did not start")
        threading.Thread(target=lambda: [None for _ in self.p.stderr], daemon=True).start()

    def rss_kib(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def call(self, method, path, token=None, body=None, headers=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        data = None if body is None else body.encode()
        req = urllib.request.Request(self.url + path, data=data, headers=h, method=method)
        try:
            with OPENER.open(req, timeout=600) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=120)


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(xs):
    return {"p50": round(pct(xs, 50), 1), "p99": round(pct(xs, 99), 1), "max": round(max(xs), 1)}


def parse_time(t):
    # RFC 3339, UTC, milliseconds: 2026-12-02T09:00:00.123Z
    from datetime import datetime
    return datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000


def wait_until(s, pred, what, limit=1800):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        code, v = s.call("GET", "/v1/runs", "ann-token")
        if code == 200 and pred(v["runs"]):
            return time.monotonic() - start
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pbc", default=os.path.join(ROOT, "target/release/pbc"))
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--events", type=int, default=300)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pbc-serve-bench-")
    project(d)
    s = Server(os.path.abspath(a.pbc), d)
    out = {"runs": a.runs, "clients": a.clients, "cpus": os.cpu_count(),
           "load_before": os.getloadavg()[0]}
    try:
        time.sleep(1)
        out["rss_idle_mib"] = round(s.rss_kib() / 1024, 1)

        say(f"server up at {s.url}; starting {a.runs} runs")
        # 1. Runs waiting at a gate.
        pool = ThreadPoolExecutor(a.clients)
        t0 = time.monotonic()
        started = list(pool.map(lambda i: s.call("POST", "/v1/runs", "ann-token",
                                                 json.dumps({"playbook": "gated", "input": {}})),
                                range(a.runs)))
        created = time.monotonic() - t0
        assert all(c == 201 for c, _ in started), [v for c, v in started if c != 201][:3]
        wait_until(s, lambda runs: sum(r["status"] == "waiting-approval" for r in runs) >= a.runs,
                   "every run to wait")
        out["runs_started_per_s"] = round(a.runs / created, 1)
        time.sleep(2)
        out["rss_waiting_mib"] = round(s.rss_kib() / 1024, 1)

        say("every run waits; approving")
        # 2. Approvals by 100 clients.
        code, v = s.call("GET", "/v1/approvals", "sam-token")
        ids = [x["id"] for x in v["approvals"]]
        assert len(ids) == a.runs, len(ids)

        def approve(i):
            t = time.monotonic()
            c, _ = s.call("POST", f"/v1/approvals/{i}/approve", "sam-token")
            return c, (time.monotonic() - t) * 1000
        t0 = time.monotonic()
        res = list(pool.map(approve, ids))
        out["approvals_per_s"] = round(len(ids) / (time.monotonic() - t0), 1)
        assert all(c == 200 for c, _ in res), [c for c, _ in res if c != 200][:5]
        out["approve_request_ms"] = ms([l for _, l in res])
        final = ("succeeded", "failed", "rejected", "expired", "blocked", "stopped")
        wait_until(s, lambda runs: sum(r["status"] in final for r in runs) >= a.runs,
                   "every run to finish", limit=3600)
        code, v = s.call("GET", "/v1/runs", "ann-token")
        by = {}
        for r in v["runs"]:
            by[r["status"]] = by.get(r["status"], 0) + 1
        out["gated_runs_by_status"] = by
        granted, started_at = {}, {}
        with open(os.path.join(d, "st", "audit.jsonl")) as f:
            for line in f:
                e = json.loads(line)
                if e["event"] == "approval-granted":
                    granted[e["run"]] = parse_time(e["time"])
                elif e["event"] == "stage-started" and e.get("stage") == "apply":
                    started_at[e["run"]] = parse_time(e["time"])
        gaps = [started_at[r] - granted[r] for r in granted if r in started_at]
        out["approve_to_stage_started_ms"] = ms(gaps)
        out["approve_to_stage_started_n"] = len(gaps)

        say("every approved run finished; posting events")
        # 3. Events with a fixture agent.
        def event(i):
            body = json.dumps({"n": i})
            sig = "sha256=" + hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            return s.call("POST", "/v1/events/ping", body=body, headers={"X-Hub-Signature-256": sig})[0]
        t0 = time.monotonic()
        codes = list(pool.map(event, range(a.events)))
        say("events accepted; waiting for their runs")
        accepted = time.monotonic() - t0
        assert all(c == 202 for c in codes), codes[:5]
        done = wait_until(s, lambda runs: sum(r["playbook"] == "ping" and r["status"] in final
                                              for r in runs) >= a.events, "the events' runs")
        code, v = s.call("GET", "/v1/runs", "ann-token")
        by = {}
        for r in v["runs"]:
            if r["playbook"] == "ping":
                by[r["status"]] = by.get(r["status"], 0) + 1
        out["event_runs_by_status"] = by
        out["events_accepted_per_s"] = round(a.events / accepted, 1)
        out["event_runs_finished_per_s"] = round(a.events / (accepted + done), 1)
        out["rss_end_mib"] = round(s.rss_kib() / 1024, 1)
        out["load_after"] = os.getloadavg()[0]
    finally:
        s.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
