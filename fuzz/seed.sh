#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/) from testdata/. Idempotent: seeds are
# named by their content's hash, so running it again adds nothing twice and leaves what the
# fuzzers found alone. Needs python3. Usage: bash fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'EOF'
import hashlib, os, re, sys
from pathlib import Path

T = Path("testdata")
OUT = Path("fuzz/corpus")
MAX = 64 * 1024  # larger files would raise libFuzzer's -max_len and slow every run
counts = {}

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > MAX:
        return
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    p = d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])
    if not p.exists():
        p.write_bytes(data)
        counts[target] = counts.get(target, 0) + 1

def files(root):
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for n in sorted(names):
            p = Path(dirpath) / n
            if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX:
                continue
            yield p

def is_yaml(p):
    return p.suffix in (".yaml", ".yml", ".json") or p.name == "Kustomization"

KUST = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# loader: every YAML and JSON file.
for p in files(T):
    if is_yaml(p):
        put("loader", p.read_bytes())

# model: every file with a Playbook document.
for p in files(T):
    if p.suffix in (".yaml", ".yml"):
        b = p.read_bytes()
        if b"kind: Playbook" in b:
            put("model", b)

# expr: conditions, `when`, monitoring targets and alert conditions, `${...}` texts; and
# a few hand-written forms.
key = re.compile(r"^\s*(?:-\s+)?(if|when|target|condition):\s*(.+?)\s*$")
for p in files(T):
    if p.suffix not in (".yaml", ".yml"):
        continue
    for line in p.read_text(errors="replace").splitlines():
        m = key.match(line)
        if m:
            v = m.group(2)
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            put("expr", v)
        if "${" in line:
            put("expr", line.split(":", 1)[-1].strip().strip("'\""))
for e in [
    "report.risk-level >= HIGH AND report.rows > 10",
    "report.risk-level IN [HIGH, CRITICAL] OR NOT report.ok",
    "report.wait < 4h && report.ratio >= 30%",
    "report.owner.team == 'platform' || report.tags NOT IN ['x']",
    "(report.score != null) AND later.x == 1",
    "p95 < 4h",
    "approval-latency > 6h",
    "deployed ${report.rows} rows for ${input.user}",
]:
    put("expr", e)

# resolve: one input per kustomization directory: the files of its case (the directory
# directly under overlays/, overlays-bad/, overlays-types/, or example/playbooks), as
# `==> path <==` sections, the directory's kustomization file first.
def case_root(d):
    rel = d.relative_to(T).parts
    if rel[0] in ("overlays", "overlays-bad", "overlays-types") and len(rel) > 1:
        return T / rel[0] / rel[1]
    if rel[:2] == ("example", "playbooks"):
        return T / "example" / "playbooks"
    return None

for p in files(T):
    if p.name not in KUST:
        continue
    root = case_root(p.parent)
    if root is None:
        continue
    parts = [p] + [q for q in files(root) if q != p and is_yaml(q) and q.name != "expected.yaml"]
    out = b""
    for q in parts:
        out += b"==> " + str(q.relative_to(root)).encode() + b" <==\n" + q.read_bytes()
        if not out.endswith(b"\n"):
            out += b"\n"
    put("resolve", out)

# json6902: a playbook, `---`, an operation list: the lists of the overlay tests (inline
# `patch:` blocks and operation files) applied to their case's base playbook.
def block(lines, i):
    ind = len(lines[i]) - len(lines[i].lstrip())
    body = []
    for l in lines[i + 1:]:
        if l.strip() and len(l) - len(l.lstrip()) <= ind:
            break
        body.append(l)
    pad = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    return "\n".join(l[pad:] for l in body) + "\n"

default_doc = (T / "overlays/json6902-add-remove/base/code-review-agent.yaml").read_text()
for root in sorted((T / "overlays").iterdir()) + sorted((T / "overlays-bad").iterdir()):
    if not root.is_dir():
        continue
    doc = default_doc
    for q in files(root):
        if q.suffix == ".yaml" and "base" in q.parts:
            t = q.read_text()
            if "kind: Playbook" in t and "\n---" not in t:
                doc = t
                break
    lists = []
    for q in files(root):
        if not is_yaml(q):
            continue
        t = q.read_text(errors="replace")
        if q.name in KUST:
            ls = t.splitlines()
            for i, l in enumerate(ls):
                if re.match(r"^\s*patch:\s*\|", l):
                    b = block(ls, i)
                    if b.lstrip().startswith(("- op", "[")):
                        lists.append(b)
        elif t.lstrip().startswith(("- op", "[")) or "\"op\"" in t[:200]:
            lists.append(t)
    for ops in lists:
        put("json6902", doc.rstrip("\n") + "\n---\n" + ops)
put("json6902", "a: [1, 2]\nb: {c: 1}\n---\n- {op: move, from: /a, path: /b/d}\n- {op: test, path: /b/d/1, value: 2}\n- {op: copy, from: /b, path: /a}\n- {op: remove, path: /b/c}\n- {op: replace, path: '', value: x}\n")

for t in ["loader", "expr", "resolve", "model", "json6902"]:
    n = len(list((OUT / t).iterdir())) if (OUT / t).is_dir() else 0
    print(f"{t}: {counts.get(t, 0)} new seeds, {n} inputs", file=sys.stderr)
EOF
