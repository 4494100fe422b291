#!/usr/bin/env python3
"""External oracle for pbc's targets: checks what `pbc build --target all -o OUT` wrote with
the consumers' own tools (the Argo and Kubernetes schemas, hera, langgraph).

    oracle.py --reference testdata/reference OUT [OUT ...]

* argo/*.yaml: every document validates against both Argo schema files (3.7.18 and 4.1.2)
  made strict (every object definition closed, so an unknown field fails: hera's models
  accept them silently), loads with hera, and its DAGs refer only to tasks and templates
  that exist. Its ConfigMaps follow the API server's rules (DNS-subdomain name, valid data
  keys, at most 1 MiB of keys and values) and hold every item the WorkflowTemplate's
  projected volume mounts, at relative paths without `..`, no path twice.
* crd-definition/playbooks.<group>.yaml: validates against the apiextensions/v1 schema and
  the structural-schema rules, and carries an Argo CD sync wave before the resources'; every
  crd/*.yaml beside it (a custom resource; no definition there) validates against that
  CRD's schema, closed the same way.
* langgraph/*.json: validates against the format's schema, compiles into a real langgraph
  StateGraph (targets/python/pbc_langgraph.py) and runs with stub nodes: it stops at every
  approval node, finishes once everything is approved, stops for good after a rejection,
  takes both sides of each conditional gate, asks at a gate whose value is absent, and
  passes a gated stage whose `when` is false without asking and without blocking what needs
  it.

It fails (exit 1) on any problem, and also when it finds nothing to check or cannot run.
"""

from __future__ import annotations

import argparse
import ast
import copy
import itertools
import json
import pathlib
import re
import sys
import uuid

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

try:
    import jsonschema
    import yaml  # PyYAML comes with hera
    from hera.workflows import CronWorkflow, WorkflowTemplate

    import pbc_langgraph as plg
except Exception as e:  # pragma: no cover - the oracle must not skip
    print(f"oracle: cannot run: {e}", file=sys.stderr)
    sys.exit(1)

FAILS: list[str] = []
COUNTS: dict[str, int] = {}


def fail(msg: str) -> None:
    FAILS.append(msg)
    print(f"FAIL {msg}", file=sys.stderr)


def count(what: str, n: int = 1) -> None:
    COUNTS[what] = COUNTS.get(what, 0) + n


# ---------------------------------------------------------------------------------------
# Argo


def strict(schema):
    """Closes every object schema that names its properties (deep copy)."""
    s = copy.deepcopy(schema)

    def walk(n):
        if isinstance(n, dict):
            if isinstance(n.get("properties"), dict) and "additionalProperties" not in n:
                n["additionalProperties"] = False
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(s)
    return s


def argo_validators(reference: pathlib.Path):
    out = []
    for name in ("schema-v3.7.18.json", "schema.json"):
        raw = json.loads((reference / "argo" / name).read_text())
        s = strict(raw)
        out.append((name, s))
    return out


def check_dag(path, doc):
    templates = {t["name"]: t for t in doc["spec"].get("templates", [])}
    entry = doc["spec"].get("entrypoint")
    if entry not in templates:
        fail(f"{path}: entrypoint {entry!r} is not a template")
    on_exit = doc["spec"].get("onExit")
    if on_exit and on_exit not in templates:
        fail(f"{path}: onExit {on_exit!r} is not a template")
    for t in templates.values():
        dag = t.get("dag")
        if not dag:
            continue
        names = [x["name"] for x in dag["tasks"]]
        if len(set(names)) != len(names):
            fail(f"{path}: template {t['name']}: duplicate task names")
        for task in dag["tasks"]:
            if task["template"] not in templates:
                fail(f"{path}: task {task['name']}: no template {task['template']!r}")
            dep = task.get("depends", "")
            for word in dep.replace("(", " ").replace(")", " ").replace("&&", " ").replace("||", " ").replace("!", " ").split():
                base = word.split(".")[0]
                if base not in names:
                    fail(f"{path}: task {task['name']}: depends on unknown task {base!r}")
            count("argo DAG tasks")


CM_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_config_maps(path, docs):
    """The ConfigMaps as the API server validates them, and the volume that mounts them."""
    cms = {}
    for doc in docs:
        if doc.get("kind") != "ConfigMap":
            continue
        if doc.get("apiVersion") != "v1" or set(doc) - {"apiVersion", "kind", "metadata", "data"}:
            fail(f"{path}: ConfigMap with unexpected fields {sorted(doc)}")
        name = doc["metadata"]["name"]
        if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
            fail(f"{path}: ConfigMap name {name!r} is not a DNS subdomain")
        size = 0
        for k, v in doc.get("data", {}).items():
            if not CM_KEY.match(k) or len(k) > 253 or k in (".", ".."):
                fail(f"{path}: ConfigMap {name}: invalid key {k!r}")
            if not isinstance(v, str):
                fail(f"{path}: ConfigMap {name}: key {k!r} is not a string")
                continue
            size += len(k.encode()) + len(v.encode())
        if size > 1024 * 1024:
            fail(f"{path}: ConfigMap {name} holds {size} bytes, over 1 MiB")
        cms[name] = doc
        count("config maps valid")
    for doc in docs:
        if doc.get("kind") != "WorkflowTemplate":
            continue
        vols = [v for v in doc["spec"].get("volumes", []) if v["name"] == "pbc-config"]
        if len(vols) != 1 or "projected" not in vols[0]:
            fail(f"{path}: no projected volume pbc-config")
            continue
        seen = set()
        for src in vols[0]["projected"]["sources"]:
            cm = cms.get(src["configMap"]["name"])
            if cm is None:
                fail(f"{path}: the volume mounts ConfigMap {src['configMap']['name']!r}, not emitted")
                continue
            for item in src["configMap"]["items"]:
                p = item["path"]
                if item["key"] not in cm.get("data", {}):
                    fail(f"{path}: item key {item['key']!r} not in {cm['metadata']['name']}")
                if p.startswith("/") or ".." in p.split("/") or p in seen:
                    fail(f"{path}: bad or repeated item path {p!r}")
                seen.add(p)
        if "playbook.yaml" not in seen:
            fail(f"{path}: the volume does not mount playbook.yaml")
        count("config volumes checked")


def check_argo(path: pathlib.Path, validators):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if not docs:
        fail(f"{path}: no documents")
    check_config_maps(path, docs)
    for doc in docs:
        kind = doc.get("kind")
        if kind == "ConfigMap":
            continue
        if kind not in ("WorkflowTemplate", "CronWorkflow"):
            fail(f"{path}: unexpected kind {kind!r}")
            continue
        for name, schema in validators:
            s = dict(schema)
            s.pop("oneOf", None)
            s["$ref"] = f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}"
            v = jsonschema.Draft202012Validator(s)
            errs = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
            for e in errs[:5]:
                fail(f"{path}: {kind} against {name}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
            count(f"argo documents valid against {name}", 0 if errs else 1)
        try:
            cls = WorkflowTemplate if kind == "WorkflowTemplate" else CronWorkflow
            obj = cls.from_dict(doc)
            back = obj.to_dict()
            if back.get("metadata", {}).get("name") != doc["metadata"]["name"]:
                fail(f"{path}: hera lost the name")
            count("argo documents loaded with hera")
        except Exception as e:
            fail(f"{path}: hera cannot load the {kind}: {e}")
        if kind == "WorkflowTemplate":
            check_dag(path, doc)
            if len(doc["metadata"]["name"]) > 63:
                fail(f"{path}: WorkflowTemplate name longer than 63")
        else:
            if len(doc["metadata"]["name"]) > 52:
                fail(f"{path}: CronWorkflow name longer than 52")
            if "schedule" in doc["spec"]:
                fail(f"{path}: singular `schedule` emitted")


# ---------------------------------------------------------------------------------------
# CRD

FORBIDDEN = {"$ref", "$schema", "definitions", "dependencies", "additionalItems", "patternProperties", "id", "const", "$defs"}
JUNCTOR_FORBIDDEN = {"type", "description", "default", "additionalProperties", "nullable", "title"}


def structural_errors(node, path="openAPIV3Schema", in_junctor=False, outer=None):
    errs = []
    if not isinstance(node, dict):
        return [f"{path}: not an object"]
    for k in node:
        if k in FORBIDDEN:
            errs.append(f"{path}: forbidden keyword {k}")
    if node.get("uniqueItems") is True:
        errs.append(f"{path}: uniqueItems true")
    if in_junctor:
        for k in node:
            if k in JUNCTOR_FORBIDDEN or k.startswith("x-kubernetes-"):
                errs.append(f"{path}: {k} inside a junctor")
        for p in node.get("properties", {}):
            if outer is None or p not in (outer.get("properties") or {}):
                errs.append(f"{path}: junctor property {p} not in the structural schema")
    else:
        typed = "type" in node or node.get("x-kubernetes-preserve-unknown-fields") is True or node.get("x-kubernetes-int-or-string") is True
        if not typed:
            errs.append(f"{path}: no type")
        if "properties" in node and "additionalProperties" in node:
            errs.append(f"{path}: properties and additionalProperties together")
        if node.get("additionalProperties") is False:
            errs.append(f"{path}: additionalProperties false")
        if node.get("type") == "object" and "items" in node:
            errs.append(f"{path}: items on an object")
    for k, v in (node.get("properties") or {}).items():
        errs += structural_errors(v, f"{path}.properties.{k}", in_junctor, None)
    if isinstance(node.get("items"), dict):
        errs += structural_errors(node["items"], f"{path}.items", in_junctor, None)
    if isinstance(node.get("additionalProperties"), dict):
        errs += structural_errors(node["additionalProperties"], f"{path}.additionalProperties", in_junctor, None)
    for j in ("allOf", "anyOf", "oneOf"):
        for i, b in enumerate(node.get(j) or []):
            errs += structural_errors(b, f"{path}.{j}[{i}]", True, node)
    if isinstance(node.get("not"), dict):
        errs += structural_errors(node["not"], f"{path}.not", True, node)
    return errs


def cr_schema(openapi):
    """The CRD's schema as JSON Schema, closed where the API server would prune."""
    s = copy.deepcopy(openapi)

    def walk(n):
        if isinstance(n, dict):
            if isinstance(n.get("properties"), dict) and "additionalProperties" not in n and not n.get("x-kubernetes-preserve-unknown-fields"):
                n["additionalProperties"] = False
            for k, v in list(n.items()):
                if k.startswith("x-kubernetes-"):
                    continue
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(s)
    return s


def check_crd_dir(d: pathlib.Path, k8s_schema):
    defs = sorted((d.parent / "crd-definition").glob("playbooks.*.yaml"))
    if len(defs) != 1:
        fail(f"{d.parent}: expected one crd-definition/playbooks.<group>.yaml, found {len(defs)}")
        return
    crd_path = defs[0]
    crd = yaml.safe_load(crd_path.read_text())
    if crd_path.name != f"{crd['metadata']['name']}.yaml":
        fail(f"{crd_path}: not named after the CRD ({crd['metadata']['name']})")
    wave = crd["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave")
    if wave is None or int(wave) >= 0:
        fail(f"{crd_path}: no Argo CD sync wave before the resources' (got {wave!r})")
    errs = sorted(jsonschema.Draft202012Validator(k8s_schema).iter_errors(crd), key=lambda e: list(e.absolute_path))
    for e in errs[:5]:
        fail(f"{crd_path}: against apiextensions/v1: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
    if not errs:
        count("CRDs valid against apiextensions/v1")
    spec = crd["spec"]
    if crd["metadata"]["name"] != f"{spec['names']['plural']}.{spec['group']}":
        fail(f"{crd_path}: name is not <plural>.<group>")
    versions = spec["versions"]
    storage = [v for v in versions if v.get("storage")]
    if len(storage) != 1:
        fail(f"{crd_path}: exactly one storage version expected")
    for v in versions:
        openapi = v["schema"]["openAPIV3Schema"]
        serrs = structural_errors(openapi)
        for e in serrs[:10]:
            fail(f"{crd_path}: not structural: {e}")
        meta = openapi.get("properties", {}).get("metadata", {})
        if set(meta.get("properties", {})) - {"name", "generateName"}:
            fail(f"{crd_path}: metadata schema may only constrain name and generateName")
        if not serrs:
            count("CRDs structural")
    version = storage[0] if storage else versions[0]
    validator = jsonschema.Draft202012Validator(cr_schema(version["schema"]["openAPIV3Schema"]))
    api = f"{spec['group']}/{version['name']}"
    crs = sorted(d.glob("*.yaml"))
    if not crs:
        fail(f"{d}: no custom resources")
    for p in crs:
        cr = yaml.safe_load(p.read_text())
        if cr.get("kind") == "CustomResourceDefinition":
            fail(f"{p}: a CRD among the custom resources (kubectl cannot apply both at once)")
            continue
        if cr.get("apiVersion") != api or cr.get("kind") != spec["names"]["kind"]:
            fail(f"{p}: apiVersion/kind {cr.get('apiVersion')}/{cr.get('kind')} is not {api}/{spec['names']['kind']}")
        bad_meta = set(cr.get("metadata", {})) - {"name", "namespace", "labels", "annotations"}
        if bad_meta:
            fail(f"{p}: non-ObjectMeta fields in metadata: {sorted(bad_meta)}")
        errs = sorted(validator.iter_errors(cr), key=lambda e: list(e.absolute_path))
        for e in errs[:5]:
            fail(f"{p}: against its CRD: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
        if not errs:
            count("custom resources valid against their CRD")


# ---------------------------------------------------------------------------------------
# LangGraph


def reads_and_literals(expr: str):
    """Paths (('outputs', stage, field...) or ('input', field...)) and literals in an expression."""
    tree = ast.parse(expr, mode="eval")
    paths, lits = [], []

    def chain(n):
        keys = []
        while isinstance(n, ast.Subscript):
            keys.append(n.slice.value)
            n = n.value
        if isinstance(n, ast.Name) and n.id in ("outputs", "input"):
            return (n.id, *reversed(keys))
        return None

    for n in ast.walk(tree):
        if isinstance(n, ast.Subscript):
            c = chain(n)
            if c and c not in paths and not any(c == p[: len(c)] for p in paths):
                paths = [p for p in paths if p[: len(c)] != c or len(p) <= len(c)]
                paths.append(c)
        elif isinstance(n, ast.Constant) and not isinstance(n.value, str) or (isinstance(n, ast.Constant) and isinstance(n.value, str)):
            lits.append(n.value)
        elif isinstance(n, ast.Name) and n.id in ("true", "false", "null"):
            lits.append({"true": True, "false": False, "null": None}[n.id])
    # keep only the longest chains (full paths)
    full = [p for p in paths if not any(q != p and q[: len(p)] == p for q in paths)]
    return full, lits


def set_path(outputs, inp, path, value):
    root, *keys = path
    if root == "outputs":
        stage, *rest = keys
        d = outputs.setdefault(stage, {})
    else:
        rest = keys
        d = inp
    for k in rest[:-1]:
        d = d.setdefault(k, {})
    if rest:
        d[rest[-1]] = value


def find_assignment(expr: str, want: bool):
    """Outputs and input under which `expr` is `want`, from the expression's own literals."""
    paths, lits = reads_and_literals(expr)
    cands = []
    for l in lits:
        cands.append(l)
        if isinstance(l, (int, float)) and not isinstance(l, bool):
            cands += [l + 1, l - 1]
    cands += [True, False, None, 0, "x"]
    uniq = []
    for c in cands:
        if not any(type(c) is type(u) and c == u for u in uniq):
            uniq.append(c)
    e = plg.Expr(expr, list(plg.BUILTINS))
    for combo in itertools.islice(itertools.product(uniq, repeat=len(paths)), 20000):
        outputs, inp = {}, {}
        for p, v in zip(paths, combo):
            set_path(outputs, inp, p, v)
        if bool(e({"outputs": outputs, "input": inp, "approvals": {}, "trace": []})) == want:
            return outputs, inp
    return None


def run(doc, outputs, inp, decide=lambda a: "approved", max_rounds=64):
    ex = lambda n, s: copy.deepcopy(outputs.get(n["id"], {}))
    app = plg.build_graph(doc, {"agent": ex, "action": ex})
    cfg = {"configurable": {"thread_id": str(uuid.uuid4())}}
    app.invoke({"input": inp}, cfg)
    asked, decisions = [], {}
    for _ in range(max_rounds):
        nxt = app.get_state(cfg).next
        if not nxt:
            break
        pending = [n for n in nxt if n in doc["interrupt_before"]]
        if not pending:
            fail(f"{doc['name']}: stopped before non-approval nodes {nxt}")
            break
        for a in pending:
            asked.append(a)
            d = decide(a)
            decisions[a] = d
            plg.decide(app, cfg, a, d)
        app.invoke(None, cfg)
    st = app.get_state(cfg)
    return asked, list(st.values.get("trace", [])), tuple(st.next), decisions


def downstream(doc, start):
    succ = {}
    for e in doc["edges"]:
        for s in (e["source"] if isinstance(e["source"], list) else [e["source"]]):
            succ.setdefault(s, []).append(e["target"])
    for ce in doc.get("conditional_edges", []):
        for t in [b["target"] for b in ce["branches"]] + [ce["default"]]:
            if t != "__end__":
                succ.setdefault(ce["source"], []).append(t)
    seen, todo = set(), list(succ.get(start, []))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += succ.get(n, [])
    return seen


def stage_nodes(doc):
    return [n["id"] for n in doc["nodes"] if n["kind"] in ("agent", "action")]


def check_langgraph(path: pathlib.Path, fmt_schema):
    doc = json.loads(path.read_text())
    errs = list(jsonschema.Draft202012Validator(fmt_schema).iter_errors(doc))
    for e in errs[:5]:
        fail(f"{path}: against pbc-langgraph-v1: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
    try:
        plg.validate(doc)
        plg.build_graph(doc)
    except Exception as e:
        fail(f"{path}: does not compile into a StateGraph: {e}")
        return
    count("langgraph documents compiled")
    name = f"{path.parent.parent.name}/{path.name}"
    approvals = [n["id"] for n in doc["nodes"] if n["kind"] == "approval"]
    blocked = set(doc.get("metadata", {}).get("blocked", []))
    refused = {n["id"] for n in doc["nodes"] if n.get("metadata", {}).get("refused")}
    # 1. Every value absent: every gate asks (fail safe); approve all: the run finishes.
    asked, trace, nxt, _ = run(doc, {}, {})
    if nxt:
        fail(f"{name}: approving everything did not finish (next {nxt})")
    for s in stage_nodes(doc):
        if s not in trace and f"skipped:{s}" not in trace:
            fail(f"{name}: stage node {s} neither ran nor was skipped after approving everything")
    count("langgraph runs finished after approval")
    hit = set(asked)
    # 2. Conditional gates: both sides, and asking on absent values.
    for ce in doc.get("conditional_edges", []):
        if ce["source"] in approvals:
            continue
        for b in ce["branches"]:
            if b["target"] not in approvals:
                continue
            a = b["target"]
            gate_stage = next((n for n in doc["nodes"] if n["id"] == a), {}).get("metadata", {}).get("stage")
            node_when = next((n.get("when") for n in doc["nodes"] if n["id"] == gate_stage), None)
            if a not in asked and node_when is None:
                fail(f"{name}: gate {a} did not ask when the values it reads are absent")
            elif a in asked:
                count("langgraph gates that ask on absent values")
            on = find_assignment(b["when"], True)
            off = find_assignment(b["when"], False)
            if on is None or off is None:
                fail(f"{name}: no values found to take both sides of {b['when']!r}")
                continue
            asked_on, trace_on, nxt_on, _ = run(doc, *on)
            asked_off, trace_off, nxt_off, _ = run(doc, *off)
            hit |= set(asked_on)
            if a not in asked_on:
                fail(f"{name}: {a} not asked although {b['when']!r} holds")
            if a in asked_off:
                fail(f"{name}: {a} asked although {b['when']!r} does not hold")
            if nxt_on or nxt_off:
                fail(f"{name}: a conditional run did not finish")
            if a in asked_on and a not in asked_off:
                count("langgraph conditionals taken both ways")
    # 3. Every approval node stops the run at least once.
    for a in approvals:
        if a not in hit:
            # A gate behind a `when`: make the when true.
            stage = next(n for n in doc["nodes"] if n["id"] == a).get("metadata", {}).get("stage")
            w = next((n.get("when") for n in doc["nodes"] if n["id"] == stage), None)
            sol = find_assignment(w, True) if w else None
            if sol:
                asked_w, _, _, _ = run(doc, *sol)
                hit |= set(asked_w)
        if a not in hit:
            fail(f"{name}: the run never stopped at approval node {a}")
        else:
            count("langgraph approval nodes that stop the run")
    # 4. A rejection stops for good.
    for a in approvals:
        if a not in hit:
            continue
        asked_r, trace_r, nxt_r, dec = run(doc, {}, {}, decide=lambda x, a=a: "rejected" if x == a else "approved")
        if a not in asked_r:
            stage = next(n for n in doc["nodes"] if n["id"] == a).get("metadata", {}).get("stage")
            w = next((n.get("when") for n in doc["nodes"] if n["id"] == stage), None)
            sol = find_assignment(w, True) if w else ({}, {})
            asked_r, trace_r, nxt_r, dec = run(doc, *sol, decide=lambda x, a=a: "rejected" if x == a else "approved")
        if a not in asked_r:
            continue
        if nxt_r:
            fail(f"{name}: after rejecting {a} the run can still go on ({nxt_r})")
        after = downstream(doc, a)
        ran = [t for t in trace_r if t.split(":")[-1] in after and not t.startswith("approval:")]
        if ran:
            fail(f"{name}: after rejecting {a}, {ran} ran")
        else:
            count("langgraph rejections that stop for good")
    # 5. A gated stage whose `when` is false: no question, nothing blocked.
    for n in doc["nodes"]:
        if "when" not in n:
            continue
        gates = [a for a in approvals if next(x for x in doc["nodes"] if x["id"] == a).get("metadata", {}).get("stage") == n["id"]]
        if not gates:
            continue
        sol = find_assignment(n["when"], False)
        if sol is None:
            fail(f"{name}: no values make the when of {n['id']} false")
            continue
        asked_w, trace_w, nxt_w, _ = run(doc, *sol)
        if any(g in asked_w for g in gates):
            fail(f"{name}: {gates} asked although the when of {n['id']} is false")
        if f"skipped:{n['id']}" not in trace_w:
            fail(f"{name}: {n['id']} not recorded as skipped")
        later = [s for s in stage_nodes(doc) if s in downstream(doc, n["id"])]
        missing = [s for s in later if s not in trace_w and f"skipped:{s}" not in trace_w]
        if nxt_w or missing:
            fail(f"{name}: the skipped gated stage {n['id']} blocked {missing or nxt_w}")
        else:
            count("langgraph when-false gated stages passed")
    # 6. Per-branch approvers: values that make a branch's `when` hold also make its gate ask,
    #    and there the loader names the approvers of the first branch that holds.
    names = list(plg.BUILTINS) + list((doc.get("state") or {}).keys())
    for a in approvals:
        node = next(x for x in doc["nodes"] if x["id"] == a)
        branches = node.get("metadata", {}).get("approvers_by_branch")
        if not branches:
            continue
        for b in branches:
            if "when" not in b:
                continue
            sol = find_assignment(b["when"], True)
            if sol is None:
                fail(f"{name}: no values make the approvers branch {b['branch']!r} of {a} hold")
                continue
            asked_b, _, _, _ = run(doc, *sol)
            state = {"outputs": sol[0], "input": sol[1], "approvals": {}, "trace": []}
            first = next(x for x in branches if "when" not in x or plg.Expr(x["when"], names)(state))
            got = plg.approvers(doc, a, state)
            if a not in asked_b:
                fail(f"{name}: the approvers branch {b['branch']!r} of {a} holds but the gate did not ask")
            elif got != first["approvers"]:
                fail(f"{name}: {a} names {got}, not the approvers of the branch that fires")
            else:
                count("langgraph per-branch approvers")
    del blocked, refused


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, type=pathlib.Path)
    ap.add_argument("--schemas", default=pathlib.Path("schemas"), type=pathlib.Path)
    ap.add_argument("out", nargs="+", type=pathlib.Path)
    args = ap.parse_args()
    reference = args.reference
    validators = argo_validators(reference)
    k8s = json.loads((reference / "k8s/customresourcedefinition-apiextensions-v1.json").read_text())
    fmt = json.loads((args.schemas / "pbc-langgraph-v1.schema.json").read_text())
    argo_files, crd_dirs, lg_files = [], [], []
    for out in args.out:
        argo_files += sorted(out.rglob("argo/*.yaml"))
        crd_dirs += sorted({p.parent for p in out.rglob("crd/*.yaml")})
        lg_files += sorted(out.rglob("langgraph/*.json"))
    if not argo_files or not crd_dirs or not lg_files:
        fail(f"nothing to check: {len(argo_files)} argo files, {len(crd_dirs)} crd dirs, {len(lg_files)} langgraph files")
    for p in argo_files:
        check_argo(p, validators)
        count("argo files")
    for d in crd_dirs:
        check_crd_dir(d, k8s)
    for p in lg_files:
        check_langgraph(p, fmt)
        count("langgraph files")
    for k in sorted(COUNTS):
        print(f"{COUNTS[k]:5d}  {k}")
    if FAILS:
        print(f"oracle: {len(FAILS)} problem(s)", file=sys.stderr)
        return 1
    print("oracle: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
