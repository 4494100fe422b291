#!/usr/bin/env python3
"""Step 3 of the action: the job summary, in Markdown, appended to GITHUB_STEP_SUMMARY.

Sections: the counts by severity; the top findings with file:line (linked to the commit when
the GitHub variables are there); the findings suppression comments allowed, with their reasons
(the check report's `suppressed` list: reviewed exceptions a reviewer should see); compliance coverage totals, from `pbc coverage --format
json` when that command works (the slot is marked `<!-- pbc:coverage -->`; a pbc without it
leaves the slot empty); the enforcement map (`pbc enforcement --format json`: each declared
control against the targets of `targets.emit`); and `pbc diff` against the pull request's base (or `diff-base`).

Standard library only. Input comes through the environment (see action.yml). Text that
comes from the checked files is escaped, so a pull request cannot inject Markdown or HTML
into the summary.
"""

import json
import os
import subprocess
import sys

TOP = 10
# GitHub accepts 1 MiB of summary per step; the diff is cut well below that.
MAX_DIFF = 300_000


def paths_input():
    raw = os.environ.get("PBC_PATHS", "")
    if "\n" in raw:
        paths = [p.strip() for p in raw.splitlines() if p.strip()]
    else:
        paths = raw.split()
    return paths or ["."]


def pbc_args():
    config = os.environ.get("PBC_CONFIG", "")
    return ["--config", config] if config else []


def escape_md(text):
    """One line of untrusted text for a table cell: no HTML, no links, no pipes."""
    text = " ".join(str(text).split())
    for a, b in (
        ("&", "&amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ("|", "\\|"),
        ("[", "\\["),
        ("]", "\\]"),
        ("!", "\\!"),
    ):
        text = text.replace(a, b)
    return text


def code(text):
    """Inline code for untrusted text (a fence longer than any backtick run inside)."""
    text = " ".join(str(text).split())
    longest, run = 0, 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def warn(title, message):
    """A warning annotation in the log (message escaped as workflow commands require)."""
    message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::warning title={title}::{message}")


def blob_url(path, line):
    server = os.environ.get("GITHUB_SERVER_URL")
    repo = os.environ.get("GITHUB_REPOSITORY")
    sha = os.environ.get("GITHUB_SHA")
    if not (server and repo and sha) or path.startswith("/") or ".." in path.split("/"):
        return None
    quoted = "/".join(_quote(seg) for seg in path.split("/"))
    return f"{server}/{repo}/blob/{sha}/{quoted}#L{line}"


def _quote(seg):
    out = []
    for b in seg.encode("utf-8"):
        c = chr(b)
        out.append(c if (c.isascii() and (c.isalnum() or c in "-._~")) else "%%%02X" % b)
    return "".join(out)


def findings_section(report):
    summary = report.get("summary", {})
    errors = summary.get("errors", 0)
    warnings = summary.get("warnings", 0)
    infos = summary.get("infos", 0)
    files = summary.get("files", 0)
    verdict = "❌" if errors else ("⚠️" if warnings else "✅")
    out = [
        f"## {verdict} pbc: {errors} error(s), {warnings} warning(s), {infos} info(s)",
        "",
        "| errors | warnings | infos | files read |",
        "| ---: | ---: | ---: | ---: |",
        f"| {errors} | {warnings} | {infos} | {files} |",
        "",
    ]
    diags = report.get("diagnostics", [])
    if not diags:
        out += ["No findings.", ""]
        return out
    rank = {"error": 0, "warning": 1, "info": 2}
    ordered = sorted(
        enumerate(diags), key=lambda x: (rank.get(x[1].get("severity"), 3), x[0])
    )
    out += [
        f"### Top findings ({min(TOP, len(diags))} of {len(diags)})",
        "",
        "| severity | code | where | message |",
        "| --- | --- | --- | --- |",
    ]
    for _, d in ordered[:TOP]:
        file = d.get("file", "")
        line = d.get("line", 1)
        where = code(f"{file}:{line}")
        url = blob_url(file, line)
        if url:
            where = f"[{where}]({url})"
        out.append(
            f"| {escape_md(d.get('severity', ''))} | {escape_md(d.get('code', ''))} "
            f"| {where} | {escape_md(d.get('message', ''))} |"
        )
    out.append("")
    if len(diags) > TOP:
        out += [
            f"{len(diags) - TOP} more: see the annotations and the code-scanning alerts.",
            "",
        ]
    return out


MAX_SUPPRESSED = 100


def suppressed_section(report):
    """Every finding a `# pbc:allow(CODE): reason` comment suppressed (`suppressed` in the
    check report), with the reason given (none for older codes suppressed without one)."""
    items = report.get("suppressed")
    if not isinstance(items, list):
        return []
    items = [i for i in items if isinstance(i, dict)]
    if not items:
        return []
    out = [
        f"### Suppressed findings ({len(items)})",
        "",
        "Each `# pbc:allow(CODE): reason` comment that allowed a finding: reviewed exceptions.",
        "",
        "| code | where | reason |",
        "| --- | --- | --- |",
    ]
    for i in items[:MAX_SUPPRESSED]:
        file = i.get("file") or ""
        line = i.get("line") or 1
        where = code(f"{file}:{line}")
        url = blob_url(file, line)
        if url:
            where = f"[{where}]({url})"
        reason = i.get("reason")
        reason = escape_md(reason) if reason else "_(no reason given)_"
        out.append(f"| {escape_md(i.get('code', ''))} | {where} | {reason} |")
    out.append("")
    if len(items) > MAX_SUPPRESSED:
        out += [f"{len(items) - MAX_SUPPRESSED} more: run `pbc check --format json` locally.", ""]
    return out


def run_pbc(args):
    pbc = os.environ.get("PBC") or "pbc"
    try:
        p = subprocess.run(
            [pbc, *args], capture_output=True, text=True, encoding="utf-8", errors="replace"
        )
    except OSError as e:
        return 2, "", str(e)
    return p.returncode, p.stdout, p.stderr


def coverage_section():
    """Coverage totals per environment and framework, when `pbc coverage` works."""
    out = ["<!-- pbc:coverage -->"]
    code_, stdout, _ = run_pbc(["coverage", "--format", "json", *pbc_args(), "--", *paths_input()])
    data = None
    if code_ in (0, 1):
        try:
            data = json.loads(stdout)
        except ValueError:
            data = None
    if isinstance(data, dict) and isinstance(data.get("environments"), list):
        rows = []
        for env in data["environments"]:
            if not isinstance(env, dict):
                continue
            name = env.get("environment") or "(no environment)"
            for fw in env.get("frameworks") or []:
                if not isinstance(fw, dict):
                    continue
                t = fw.get("totals") or {}
                title = fw.get("title") or fw.get("framework") or fw.get("catalog") or "?"
                rows.append(
                    "| {} | {} | {} | {} | {} | {} | {} |".format(
                        escape_md(name),
                        escape_md(title),
                        t.get("covered", "?"),
                        t.get("claimed_without_evidence", "?"),
                        t.get("claimed_no_rule", "?"),
                        t.get("not_claimed", "?"),
                        t.get("controls", "?"),
                    )
                )
        if rows:
            out += [
                "### Compliance coverage",
                "",
                "| environment | framework | covered | claimed without evidence "
                "| claimed, no rule | not claimed | controls |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
                *rows,
                "",
            ]
    out += ["<!-- /pbc:coverage -->", ""]
    return out


MAX_CONTROLS = 100


def enforcement_section():
    """The enforcement map, from `pbc enforcement --format json`: each declared control and
    whether each target in `targets.emit` (that runs playbooks) enforces it."""
    code_, stdout, _ = run_pbc(
        ["enforcement", "--format", "json", *pbc_args(), "--", *paths_input()]
    )
    if code_ != 0:
        return []
    try:
        data = json.loads(stdout)
    except ValueError:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("playbooks"), list):
        return []
    targets = [t for t in data.get("emit") or [] if isinstance(t, str) and t != "crd"]
    if not targets:
        return []
    rows, gaps = [], 0
    for pb in data["playbooks"]:
        if not isinstance(pb, dict):
            continue
        name = pb.get("name", "?")
        if pb.get("environment"):
            name = f"{name} ({pb['environment']})"
        for c in pb.get("controls") or []:
            if not isinstance(c, dict):
                continue
            enforced = c.get("enforced") or {}
            cells = []
            for t in targets:
                ok = isinstance(enforced.get(t), str)
                gaps += 0 if ok else 1
                cells.append("✅" if ok else "❌ not enforced")
            where = code(f"{c.get('file', '')}:{c.get('line', 1)}")
            rows.append(
                f"| {escape_md(name)} | {code(c.get('declared', ''))} | {where} | "
                + " | ".join(cells)
                + " |"
            )
    if not rows:
        return []
    out = [
        "### Enforcement map",
        "",
        f"{gaps} declared control(s) not enforced by a target in `targets.emit` "
        "(`pbc enforcement` prints what enforces each).",
        "",
        "| playbook | control | where | " + " | ".join(escape_md(t) for t in targets) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in targets) + " |",
        *rows[:MAX_CONTROLS],
        "",
    ]
    if len(rows) > MAX_CONTROLS:
        out += [f"{len(rows) - MAX_CONTROLS} more: run `pbc enforcement` locally.", ""]
    return out


def diff_section():
    base = os.environ.get("PBC_DIFF_BASE") or os.environ.get("PBC_PR_BASE") or ""
    if not base:
        return ["No base revision (not a pull request, and no `diff-base`): no diff.", ""]
    code_, stdout, stderr = run_pbc(
        ["diff", "--base", base, "--format", "markdown", *pbc_args(), "--", *paths_input()]
    )
    if code_ >= 2 or not stdout.strip():
        reason = (stderr.strip().splitlines() or ["pbc diff failed"])[-1]
        reason = reason.removeprefix("error: ")
        warn("pbc diff", f"no diff against {base}: {reason}")
        return [
            "### Playbook changes",
            "",
            f"The diff against {code(base)} could not be computed: {escape_md(reason)}",
            "",
        ]
    if len(stdout) > MAX_DIFF:
        cut = stdout[:MAX_DIFF].rsplit("\n", 1)[0]
        stdout = cut + "\n\n… (cut: run `pbc diff` locally for the rest)\n"
    return [stdout.rstrip("\n"), ""]


def main():
    if os.environ.get("PBC_SUMMARY", "true").strip().lower() not in ("true", "yes", "1"):
        print("pbc: no job summary (summary: false)")
        return 0
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        print("pbc: GITHUB_STEP_SUMMARY is not set: no job summary")
        return 0
    try:
        with open(os.environ.get("PBC_REPORT", ""), encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        warn("pbc", f"no check report to summarise: {e}")
        report = {}
    lines = (
        findings_section(report)
        + suppressed_section(report)
        + coverage_section() + enforcement_section() + diff_section()
    )
    with open(target, "a", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    print(f"pbc: job summary written ({len(lines)} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
