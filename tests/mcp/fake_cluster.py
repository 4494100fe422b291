"""A fake Kubernetes cluster's tools as an MCP server, written with the official Python SDK,
for the `mcp` executor's tests (cli/tests/mcp.rs).

    python3 fake_cluster.py STATE.json                 # over stdio
    python3 fake_cluster.py STATE.json --http PORTFILE  # streamable HTTP on 127.0.0.1

STATE.json holds the nodes and their pods (each stdio call is a new process, so the cluster
lives in the file). Every request the server receives is appended to STATE.json.calls, one
JSON line (method, tool, arguments), so a test can tell that nothing was called. Over HTTP
the server binds an ephemeral loopback port and writes it to PORTFILE; with the
environment variable FAKE_CLUSTER_TOKEN set, a request without `Authorization: Bearer
<token>` is answered 401.
"""

import json
import os
import socket
import sys
import time
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

STATE = sys.argv[1]
CALLS = STATE + ".calls"


def load() -> dict[str, Any]:
    with open(STATE, encoding="utf-8") as f:
        return json.load(f)


def save(state: dict[str, Any]) -> None:
    tmp = STATE + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, STATE)


def node_of(state: dict[str, Any], node: str) -> dict[str, Any]:
    for n in state["nodes"]:
        if n["name"] == node:
            return n
    raise ToolError(f"node {node} not found")


async def log_requests(ctx, call_next):
    params = ctx.params if isinstance(ctx.params, dict) else {}
    entry = {"method": ctx.method}
    if ctx.method == "tools/call":
        entry["tool"] = params.get("name")
        entry["arguments"] = params.get("arguments")
    with open(CALLS, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    return await call_next(ctx)


server = MCPServer("fake-cluster", middleware=[log_requests])


@server.tool()
def get_node(node: str) -> dict[str, Any]:
    """A node: whether it is ready and schedulable, and its pods."""
    n = node_of(load(), node)
    return {
        "name": n["name"],
        "ready": n["ready"],
        "schedulable": n["schedulable"],
        "pods": len(n["pods"]),
    }


@server.tool()
def cordon_node(node: str, reason: str = "") -> dict[str, Any]:
    """Marks a node unschedulable."""
    state = load()
    n = node_of(state, node)
    n["schedulable"] = False
    n["reason"] = reason
    save(state)
    return {"node": node, "schedulable": False}


@server.tool()
def drain_node(node: str, grace_seconds: int, ignore_daemonsets: bool = True) -> dict[str, Any]:
    """Evicts the node's pods (DaemonSet pods stay when ignore_daemonsets)."""
    state = load()
    n = node_of(state, node)
    if n["schedulable"]:
        # A failure the tool reports: a result with isError and this text.
        raise ToolError(f"node {node} is not cordoned")
    evicted = [p["name"] for p in n["pods"] if not (ignore_daemonsets and p.get("daemonset"))]
    blocked = [p["name"] for p in n["pods"] if p["name"] in evicted and p.get("pdb")]
    if blocked:
        raise ToolError(f"cannot evict {', '.join(blocked)}: a PodDisruptionBudget allows no disruption")
    n["pods"] = [p for p in n["pods"] if p["name"] not in evicted]
    save(state)
    return {"node": node, "evicted": evicted, "remaining": len(n["pods"]), "grace_seconds": grace_seconds}


@server.tool()
def uncordon_node(node: str) -> dict[str, Any]:
    """Marks a node schedulable again."""
    state = load()
    n = node_of(state, node)
    n["schedulable"] = True
    save(state)
    return {"node": node, "schedulable": True}


@server.tool(structured_output=False)
def node_events(node: str) -> str:
    """The node's events, as JSON text (no structured content)."""
    n = node_of(load(), node)
    return json.dumps({"node": node, "events": [f"{n['name']} cordoned"] if not n["schedulable"] else []})


@server.tool()
def sleep(seconds: float) -> dict[str, Any]:
    """Takes `seconds` to answer (the kill switch's and the timeout's test)."""
    with open(STATE + ".sleeping", "w", encoding="utf-8") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return {"slept": seconds}


@server.tool()
def crash(message: str) -> dict[str, Any]:
    """Dies mid-call with `message` on stderr."""
    sys.stderr.write(f"fake-cluster: fatal: {message}\n")
    sys.stderr.flush()
    os._exit(3)


def serve_http(port_file: str) -> None:
    import anyio
    import uvicorn

    token = os.environ.get("FAKE_CLUSTER_TOKEN")
    app = server.streamable_http_app(json_response=True)

    async def guarded(scope, receive, send):
        if token and scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    tmp = port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(sock.getsockname()[1]))
    os.replace(tmp, port_file)
    config = uvicorn.Config(guarded, log_level="warning", lifespan="on")
    anyio.run(uvicorn.Server(config).serve, [sock])


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[2] == "--http":
        serve_http(sys.argv[3])
    else:
        server.run()
