#!/usr/bin/env python3
"""Runs a composite action's steps the way GitHub's runner does, without GitHub.

    runner.py ACTION_DIR RESULT_JSON [NAME=VALUE ...]

NAME=VALUE are the action's inputs (`with:`); the rest comes from the environment the caller
sets up: GITHUB_WORKSPACE (the checkout, each step's working directory), GITHUB_EVENT_PATH
(the event payload, read as `github.event`), GITHUB_EVENT_NAME, GITHUB_STEP_SUMMARY (the job's
summary file: each step's own summary is appended to it), RUNNER_TEMP, and optionally
GITHUB_SHA, GITHUB_REPOSITORY, GITHUB_SERVER_URL.

What is emulated, as the runner does it: inputs with their defaults (an unknown or missing
required input is an error); `${{ }}` in `env:` values and in `outputs.*.value`; per step,
fresh GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY files, read back after
the step (`name=value` and `name<<DELIMITER` forms); GITHUB_ACTION_PATH; `shell: bash` as
`bash --noprofile --norc -eo pipefail FILE`; the first failing step ends the run.

Deliberately refused, so that the test fails rather than passes vacuously: `${{ }}` inside a
`run:` script (the injection the action must not have), any expression that is not a plain
context path (`inputs.x`, `github.event.pull_request.base.sha`, `steps.id.outputs.y`,
`runner.temp`), `if:`, `uses:` steps and shells other than bash.

Writes RESULT_JSON: {"outcome": "success"|"failure", "failed_step": name|null, "exit_code":
n, "outputs": {...}, "log": path of the combined stdout/stderr of all steps}.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

try:
    from ruamel.yaml import YAML

    def load_yaml(text):
        return YAML(typ="safe", pure=True).load(text)

except ImportError:  # PyYAML, where check-jsonschema's ruamel.yaml is not installed
    import yaml

    def load_yaml(text):
        return yaml.safe_load(text)


EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")


class ActionError(Exception):
    pass


def lookup(ctx, expr):
    if not PATH.match(expr):
        raise ActionError(f"unsupported expression `{expr}` (only context paths are emulated)")
    cur = ctx
    for part in expr.split("."):
        if isinstance(cur, dict):
            # GitHub's property access is case-insensitive.
            match = [k for k in cur if k.lower() == part.lower()]
            cur = cur[match[0]] if match else None
        else:
            cur = None
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (dict, list)):
        return json.dumps(cur)
    return str(cur)


def evaluate(ctx, text):
    return EXPR.sub(lambda m: lookup(ctx, m.group(1)), str(text))


def read_commands_file(path):
    """GITHUB_OUTPUT / GITHUB_ENV: `name=value` lines and `name<<DELIM` blocks."""
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError:
        return out
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            value = []
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ActionError(f"{path}: no closing delimiter {delim!r} for {name!r}")
            i += 1
            out[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        else:
            raise ActionError(f"{path}: malformed line {line!r}")
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    action_dir = os.path.abspath(argv[1])
    result_path = argv[2]
    given = {}
    for a in argv[3:]:
        name, _, value = a.partition("=")
        given[name] = value

    with open(os.path.join(action_dir, "action.yml"), encoding="utf-8") as f:
        action = load_yaml(f.read())
    runs = action.get("runs") or {}
    if runs.get("using") != "composite":
        raise ActionError("not a composite action")

    declared = action.get("inputs") or {}
    for name in given:
        if name not in declared:
            raise ActionError(f"unexpected input `{name}`")
    inputs = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in given:
            inputs[name] = given[name]
        elif spec.get("required") and "default" not in spec:
            raise ActionError(f"missing required input `{name}`")
        else:
            inputs[name] = str(spec.get("default", ""))

    workspace = os.environ["GITHUB_WORKSPACE"]
    event = {}
    if os.environ.get("GITHUB_EVENT_PATH"):
        with open(os.environ["GITHUB_EVENT_PATH"], encoding="utf-8") as f:
            event = json.load(f)
    runner_temp = os.environ.get("RUNNER_TEMP") or tempfile.mkdtemp(prefix="runner-temp-")
    job_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    github = {
        "action_path": action_dir,
        "workspace": workspace,
        "event": event,
        "event_name": os.environ.get("GITHUB_EVENT_NAME", ""),
        "sha": os.environ.get("GITHUB_SHA", ""),
        "repository": os.environ.get("GITHUB_REPOSITORY", ""),
        "server_url": os.environ.get("GITHUB_SERVER_URL", ""),
    }
    ctx = {
        "inputs": inputs,
        "github": github,
        "runner": {"temp": runner_temp, "os": "Linux"},
        "steps": {},
    }

    files = tempfile.mkdtemp(prefix="runner-files-")
    log_path = os.path.join(files, "log.txt")
    log = open(log_path, "w", encoding="utf-8")
    extra_path = []
    extra_env = {}
    outcome, failed, exit_code = "success", None, 0

    for n, step in enumerate(runs.get("steps") or []):
        name = step.get("name") or step.get("id") or f"step {n + 1}"
        for key in step:
            if key not in ("name", "id", "shell", "run", "env", "working-directory"):
                raise ActionError(f"step `{name}`: `{key}` is not emulated")
        if step.get("shell") != "bash":
            raise ActionError(f"step `{name}`: shell must be bash")
        script = step.get("run")
        if not isinstance(script, str):
            raise ActionError(f"step `{name}`: no run script")
        if "${{" in script:
            raise ActionError(f"step `{name}`: `${{{{ }}}}` inside a run script (injection)")
        env = dict(os.environ)
        env.update(extra_env)
        per_step = {}
        for var in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"):
            p = os.path.join(files, f"{n}-{var.lower()}")
            open(p, "w").close()
            per_step[var] = p
        env.update(per_step)
        env["GITHUB_ACTION_PATH"] = action_dir
        env["GITHUB_WORKSPACE"] = workspace
        env["RUNNER_TEMP"] = runner_temp
        if extra_path:
            env["PATH"] = os.pathsep.join(reversed(extra_path)) + os.pathsep + env.get("PATH", "")
        for k, v in (step.get("env") or {}).items():
            env[k] = evaluate(ctx, v)
        cwd = workspace
        if step.get("working-directory"):
            cwd = os.path.join(workspace, evaluate(ctx, step["working-directory"]))
        script_path = os.path.join(files, f"{n}-script.sh")
        with open(script_path, "w", encoding="utf-8") as f:
            f.write(script)
        header = f"##[group]Run {name}\n"
        sys.stdout.write(header)
        log.write(header)
        p = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", script_path],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        for line in p.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = p.wait()
        sys.stdout.flush()
        log.flush()
        outputs = read_commands_file(per_step["GITHUB_OUTPUT"])
        if step.get("id"):
            ctx["steps"][step["id"]] = {
                "outputs": outputs,
                "outcome": "success" if code == 0 else "failure",
            }
        extra_env.update(read_commands_file(per_step["GITHUB_ENV"]))
        with open(per_step["GITHUB_PATH"], encoding="utf-8") as f:
            extra_path += [l.strip() for l in f if l.strip()]
        if job_summary:
            with open(per_step["GITHUB_STEP_SUMMARY"], encoding="utf-8") as f:
                text = f.read()
            if text:
                with open(job_summary, "a", encoding="utf-8") as f:
                    f.write(text)
        if code != 0:
            outcome, failed, exit_code = "failure", name, code
            msg = f"##[error]Process completed with exit code {code}.\n"
            sys.stdout.write(msg)
            log.write(msg)
            break

    log.close()
    outputs = {}
    for name, spec in (action.get("outputs") or {}).items():
        outputs[name] = evaluate(ctx, (spec or {}).get("value", ""))
    result = {
        "outcome": outcome,
        "failed_step": failed,
        "exit_code": exit_code,
        "outputs": outputs,
        "log": log_path,
    }
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except ActionError as e:
        print(f"runner: {e}", file=sys.stderr)
        sys.exit(3)
