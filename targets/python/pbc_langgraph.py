"""Compile pbc's LangGraph JSON (`pbc.langgraph/v1`) into a real LangGraph StateGraph.

pbc's `langgraph` target (`pbc build DIR --target langgraph`) writes one JSON document per
playbook; the format is described in pbc's docs (`docs/targets.md`). This module turns a
document into a compiled graph::

    import json, pbc_langgraph
    doc = json.load(open("bundle/langgraph/incident-triage.json"))
    app = pbc_langgraph.build_graph(doc, executors={"agent": run_agent, "action": run_action})
    cfg = {"configurable": {"thread_id": "t1"}}
    app.invoke({"input": {"source": "pagerduty"}}, cfg)   # stops before an approval node
    app.get_state(cfg).next                              # ('remediate__approval',)
    pbc_langgraph.approvers(doc, "remediate__approval", app.get_state(cfg).values)
    pbc_langgraph.decide(app, cfg, "remediate__approval", "approved")
    app.invoke(None, cfg)                                # runs on to the end

An executor is called as ``executor(node, state)`` with the node's JSON (``id``, ``kind``,
``agent``/``action``, ``metadata``: prompt, params, ...) and the current state; it returns
the node's output (a JSON-like dict), stored as ``outputs[<id>]``. Without executors, agent
and action nodes output ``{}``.

State: ``input`` (the trigger payload), ``trace`` (appended: ``<id>``, ``skipped:<id>``,
``refused:<id>``), ``outputs`` (merged), ``approvals`` (merged; the host sets
``approvals[<approval id>]`` to ``approved`` or ``rejected`` before resuming), plus the
document's ``state`` keys.

Who approves: an approval node's ``metadata.approvers``, or, for a conditional gate whose
branches name different people, ``metadata.approvers_by_branch`` (a list of ``{"when"?,
"branch", "approvers"}``; the first whose ``when`` holds, or that has none, decides).
``approvers(doc, node_id, state)`` returns the list for the current state.

Expressions (node ``when``, branch ``when``, ``approvers_by_branch[].when``) are a small subset of Python, checked before
anything runs: literals (``true``/``false``/``null`` too), lists, names of state keys,
``a.b`` and ``a['key']``, comparisons, ``in``/``not in``, ``and``/``or``/``not``, unary
``-``. A missing key reads as ``null``. Each comparison that is not defined for its operands
(ordering a number against a string, ``null`` against anything, ``in`` on a non-list) is
false, and equality is JSON equality (``true`` is not ``1``).
"""

from __future__ import annotations

import ast
import operator
from typing import Annotated, Any, Callable, Dict, List, Mapping, Optional, TypedDict

from langgraph.graph import END, START, StateGraph

FORMAT = "pbc.langgraph/v1"
BUILTINS = ("input", "trace", "outputs", "approvals")
_TYPES = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


class FormatError(ValueError):
    """The document breaks a rule of the format."""


def _merge(a: Optional[dict], b: Optional[dict]) -> dict:
    out = dict(a or {})
    out.update(b or {})
    return out


def _append(a: Optional[list], b: Optional[list]) -> list:
    return list(a or []) + list(b or [])


# ---------------------------------------------------------------------------------------
# Expressions

_ALIASES = {"true": True, "false": False, "null": None}
_ORDER = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_eq(a[k], b[k]) for k in a)
    return a == b


def _compare(op: ast.cmpop, a: Any, b: Any) -> bool:
    if isinstance(op, ast.Eq):
        return _json_eq(a, b)
    if isinstance(op, ast.NotEq):
        return not _json_eq(a, b)
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(b, list):
            return False
        found = any(_json_eq(a, x) for x in b)
        return found if isinstance(op, ast.In) else not found
    f = _ORDER.get(type(op))
    if f is None:
        return False
    if (_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str)):
        return bool(f(a, b))
    return False


class Expr:
    """A checked expression of the format."""

    def __init__(self, text: str, names: List[str]):
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise FormatError(f"expression {text!r} does not parse: {e.msg}") from None
        self._check(tree.body, set(names))
        self.tree = tree.body

    def _check(self, n: ast.AST, names: set) -> None:
        if isinstance(n, ast.Constant):
            if not (n.value is None or isinstance(n.value, (str, int, float, bool))):
                raise FormatError(f"{self.text!r}: unsupported literal")
        elif isinstance(n, ast.Name):
            if n.id not in names and n.id not in _ALIASES:
                raise FormatError(f"{self.text!r}: unknown name {n.id!r}")
        elif isinstance(n, ast.Attribute):
            self._check(n.value, names)
        elif isinstance(n, ast.Subscript):
            key = n.slice
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise FormatError(f"{self.text!r}: only string-literal subscripts are allowed")
            self._check(n.value, names)
        elif isinstance(n, ast.List):
            for e in n.elts:
                self._check(e, names)
        elif isinstance(n, ast.Compare):
            self._check(n.left, names)
            for c in n.comparators:
                self._check(c, names)
        elif isinstance(n, ast.BoolOp):
            for v in n.values:
                self._check(v, names)
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.Not, ast.USub)):
            self._check(n.operand, names)
        else:
            raise FormatError(f"{self.text!r}: {type(n).__name__} is not allowed")

    def __call__(self, state: Mapping[str, Any]) -> Any:
        return self._eval(self.tree, state)

    def _eval(self, n: ast.AST, st: Mapping[str, Any]) -> Any:
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            if n.id in _ALIASES and n.id not in st:
                return _ALIASES[n.id]
            return st.get(n.id)
        if isinstance(n, ast.Attribute):
            v = self._eval(n.value, st)
            return v.get(n.attr) if isinstance(v, dict) else None
        if isinstance(n, ast.Subscript):
            v = self._eval(n.value, st)
            return v.get(n.slice.value) if isinstance(v, dict) else None  # type: ignore[attr-defined]
        if isinstance(n, ast.List):
            return [self._eval(e, st) for e in n.elts]
        if isinstance(n, ast.Compare):
            left = self._eval(n.left, st)
            for op, c in zip(n.ops, n.comparators):
                right = self._eval(c, st)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.BoolOp):
            if isinstance(n.op, ast.And):
                return all(self._truth(v, st) for v in n.values)
            return any(self._truth(v, st) for v in n.values)
        if isinstance(n, ast.UnaryOp):
            v = self._eval(n.operand, st)
            if isinstance(n.op, ast.Not):
                return not bool(v)
            return -v if _is_num(v) else None
        raise FormatError(f"{self.text!r}: cannot evaluate {type(n).__name__}")

    def _truth(self, n: ast.AST, st: Mapping[str, Any]) -> bool:
        return bool(self._eval(n, st))


# ---------------------------------------------------------------------------------------
# Static rules


def validate(doc: Mapping[str, Any]) -> None:
    """Checks the document's static rules; raises FormatError."""
    if doc.get("format") != FORMAT:
        raise FormatError(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
    nodes = doc.get("nodes") or []
    if not nodes:
        raise FormatError("no nodes")
    ids = [n["id"] for n in nodes]
    if len(set(ids)) != len(ids):
        raise FormatError("node ids are not unique")
    known = set(ids)
    names = list(BUILTINS) + list((doc.get("state") or {}).keys())

    def ref(i: str, end_ok: bool = False) -> None:
        if i == "__end__" and end_ok:
            return
        if i not in known:
            raise FormatError(f"unknown node {i!r}")

    succ: Dict[str, List[str]] = {i: [] for i in ids}
    for e in doc.get("edges", []):
        srcs = e["source"] if isinstance(e["source"], list) else [e["source"]]
        ref(e["target"])
        for s in srcs:
            ref(s)
            succ[s].append(e["target"])
    cond_sources = set()
    for ce in doc.get("conditional_edges", []):
        ref(ce["source"])
        if ce["source"] in cond_sources:
            raise FormatError(f"two conditional edges from {ce['source']!r}")
        cond_sources.add(ce["source"])
        for b in ce["branches"]:
            ref(b["target"], True)
            Expr(b["when"], names)
            if b["target"] != "__end__":
                succ[ce["source"]].append(b["target"])
        ref(ce["default"], True)
        if ce["default"] != "__end__":
            succ[ce["source"]].append(ce["default"])
    for n in nodes:
        if "when" in n:
            Expr(n["when"], names)
        for b in (n.get("metadata") or {}).get("approvers_by_branch") or []:
            if "when" in b:
                Expr(b["when"], names)
    for i in doc.get("entry_points", []):
        ref(i)
    finish = set(doc.get("finish_points", []))
    for i in finish:
        ref(i)
    interrupts = set(doc.get("interrupt_before", []))
    by_id = {n["id"]: n for n in nodes}
    for n in nodes:
        if n["kind"] == "approval":
            if n["id"] not in interrupts:
                raise FormatError(f"approval node {n['id']!r} is not in interrupt_before")
            guard = [ce for ce in doc.get("conditional_edges", []) if ce["source"] == n["id"]]
            plain = [t for e in doc.get("edges", []) for t in [e["target"]] if e["source"] == n["id"]]
            if plain or len(guard) != 1 or guard[0]["default"] != "__end__":
                raise FormatError(f"approval node {n['id']!r} is not guarded")
            for b in guard[0]["branches"]:
                if b["when"].replace(" ", "") != f"approvals['{n['id']}']=='approved'":
                    raise FormatError(f"approval node {n['id']!r}: unexpected branch {b['when']!r}")
    # Reachability from the entry points, and reaching the end.
    seen, todo = set(), list(doc.get("entry_points", []))
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo.extend(succ.get(i, []))
    unreached = known - seen
    if unreached:
        raise FormatError(f"unreachable nodes: {sorted(unreached)}")
    ends = set(finish)
    for ce in doc.get("conditional_edges", []):
        if ce["default"] == "__end__" or any(b["target"] == "__end__" for b in ce["branches"]):
            ends.add(ce["source"])
    changed = True
    while changed:
        changed = False
        for i in ids:
            if i not in ends and any(t in ends for t in succ[i]):
                ends.add(i)
                changed = True
    stuck = known - ends
    if stuck:
        raise FormatError(f"nodes that cannot reach the end: {sorted(stuck)}")
    del by_id


# ---------------------------------------------------------------------------------------
# Building


Executor = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]


def state_type(doc: Mapping[str, Any]) -> type:
    fields: Dict[str, Any] = {
        "input": dict,
        "trace": Annotated[list, _append],
        "outputs": Annotated[dict, _merge],
        "approvals": Annotated[dict, _merge],
    }
    for k, spec in (doc.get("state") or {}).items():
        fields[k] = _TYPES.get(spec.get("type"), object)
    return TypedDict("PbcState", fields, total=False)  # type: ignore[misc]


def _node_fn(node: Mapping[str, Any], names: List[str], executors: Mapping[str, Executor]):
    nid = node["id"]
    kind = node["kind"]
    when = Expr(node["when"], names) if "when" in node else None
    meta = node.get("metadata") or {}

    def run(state: Dict[str, Any]) -> Dict[str, Any]:
        if kind == "approval":
            return {"trace": [f"approval:{nid}"]}
        if kind == "route":
            return {"trace": [f"refused:{nid}"]} if meta.get("refused") else {}
        if when is not None and not bool(when(state)):
            return {"trace": [f"skipped:{nid}"]}
        ex = executors.get(kind)
        out = ex(node, state) if ex else {}
        return {"outputs": {nid: out if out is not None else {}}, "trace": [nid]}

    run.__name__ = f"pbc_{kind}"
    return run


def _router(ce: Mapping[str, Any], names: List[str]):
    branches = [(Expr(b["when"], names), b["target"]) for b in ce["branches"]]
    default = ce["default"]

    def route(state: Dict[str, Any]) -> str:
        for test, target in branches:
            if bool(test(state)):
                return target
        return default

    return route


def build_state_graph(doc: Mapping[str, Any], executors: Optional[Mapping[str, Executor]] = None) -> StateGraph:
    """The (uncompiled) StateGraph of a document."""
    validate(doc)
    executors = executors or {}
    names = list(BUILTINS) + list((doc.get("state") or {}).keys())
    g = StateGraph(state_type(doc))
    for n in doc["nodes"]:
        g.add_node(n["id"], _node_fn(n, names, executors), metadata=n.get("metadata") or {})
    for e in doc.get("edges", []):
        g.add_edge(e["source"], e["target"])
    for ce in doc.get("conditional_edges", []):
        targets = [b["target"] for b in ce["branches"]] + [ce["default"]]
        path_map = {t: (END if t == "__end__" else t) for t in targets}
        g.add_conditional_edges(ce["source"], _router(ce, names), path_map)
    for i in doc["entry_points"]:
        g.add_edge(START, i)
    for i in doc["finish_points"]:
        g.add_edge(i, END)
    return g


def build_graph(doc: Mapping[str, Any], executors: Optional[Mapping[str, Executor]] = None, checkpointer: Any = None):
    """The compiled graph: interrupts before every approval node."""
    if checkpointer is None:
        from langgraph.checkpoint.memory import MemorySaver

        checkpointer = MemorySaver()
    g = build_state_graph(doc, executors)
    return g.compile(checkpointer=checkpointer, interrupt_before=list(doc["interrupt_before"]))


def approvers(doc: Mapping[str, Any], approval_id: str, state: Mapping[str, Any]) -> List[Any]:
    """Who may approve the approval node `approval_id` in `state` (the graph's state when it
    stopped before the node): the approvers of the gate's branch that fires."""
    names = list(BUILTINS) + list((doc.get("state") or {}).keys())
    node = next((n for n in doc["nodes"] if n["id"] == approval_id), None)
    if node is None or node.get("kind") != "approval":
        raise FormatError(f"{approval_id!r} is not an approval node")
    meta = node.get("metadata") or {}
    for b in meta.get("approvers_by_branch") or []:
        if "when" not in b or bool(Expr(b["when"], names)(state)):
            return list(b.get("approvers") or [])
    return list(meta.get("approvers") or [])


def decide(app: Any, config: Mapping[str, Any], approval_id: str, decision: str) -> None:
    """Records a person's decision (`approved` or `rejected`) for a pending approval node."""
    if decision not in ("approved", "rejected"):
        raise ValueError("decision must be 'approved' or 'rejected'")
    values = {"approvals": {approval_id: decision}}
    try:
        app.update_state(config, values)
    except Exception as e:  # several nodes ran in the last step: attribute it to the gate
        if type(e).__name__ != "InvalidUpdateError":
            raise
        app.update_state(config, values, as_node=approval_id)
