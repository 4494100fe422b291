#!/usr/bin/env bash
# Tests the GitHub Action (action.yml) without GitHub: tests/action/runner.py runs the
# composite action's steps with the GITHUB_* environment (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY,
# GITHUB_WORKSPACE, an event file) on a fixture repository with a base and a head commit, and
# this script checks the annotations, the outputs, the SARIF file and the job summary.
#
# pbc comes from the workspace build (target/debug/pbc, built here if missing or stale), put
# on PATH as the action's runner would find it; one scenario hides it to exercise the
# `cargo install` branch with a stand-in cargo. Python: .venv/bin/python (ruamel.yaml comes
# with check-jsonschema, see tests/action/requirements.txt), else python3 with PyYAML.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
py="${PBC_TEST_PYTHON:-$repo_root/.venv/bin/python}"
[[ -x "$py" ]] || py=python3

if [[ -z "${PBC_BIN:-}" ]]; then
  (cd "$repo_root" && cargo build --quiet -p pbc)
  PBC_BIN="$repo_root/target/debug/pbc"
fi

work="$(mktemp -d)"
trap '[[ -n "${PBC_KEEP:-}" ]] || rm -rf "$work"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# expect_in FILE TEXT: the file contains TEXT (fixed string).
expect_in() {
  grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks: $2"
}
expect_not_in() {
  if grep -qF -- "$2" "$1"; then fail "$(basename "$1") has: $2"; fi
}
# field RESULT KEY: a top-level or outputs.* field of the runner's result.
field() {
  "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); k=sys.argv[2].split("."); v=r
for p in k: v=v[p]
print("" if v is None else v)' "$1" "$2"
}
expect_eq() {
  [[ "$1" == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

# --- The workflow in docs/github-action.md is the one validated in docs/examples/.
"$py" - "$repo_root/docs/github-action.md" "$repo_root/docs/examples/pbc-workflow.yml" <<'EOF' ||
import sys
doc = open(sys.argv[1], encoding="utf-8").read()
block = doc.split("<!-- workflow:begin", 1)[1].split("<!-- workflow:end -->", 1)[0]
block = block.split("```yaml\n", 1)[1].rsplit("```", 1)[0]
sys.exit(0 if block == open(sys.argv[2], encoding="utf-8").read() else 1)
EOF
  fail "the workflow in docs/github-action.md differs from docs/examples/pbc-workflow.yml"

# --- The fixture repository: a clean base commit; a head commit with one error, one
# warning, a new stage and a new playbook.
repo="$work/repo"
mkdir -p "$repo/playbooks/base" "$repo/playbooks/overlays/production"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=pbc GIT_AUTHOR_EMAIL=pbc@example.com
export GIT_COMMITTER_NAME=pbc GIT_COMMITTER_EMAIL=pbc@example.com
git -C "$repo" init -q -b main
cat >"$repo/playbooks/base/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - review.yaml
EOF
cat >"$repo/playbooks/overlays/production/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
EOF
cat >"$repo/playbooks/base/review.yaml" <<'EOF'
apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: review
spec:
  trigger: pull-request-created
  stages:
    - name: analyse
      agent: glm-5
    - name: merge
      action: git:merge
      approval: manual
      approvers: [release-manager]
EOF
git -C "$repo" add -A
git -C "$repo" commit -q -m base
base_sha="$(git -C "$repo" rev-parse HEAD)"
cat >>"$repo/playbooks/base/review.yaml" <<'EOF'
    - name: deploy
      action: k8s:apply
      aproval: manual
    - name: notify
      agent: glm-5
      approvers: [sre]
EOF
git -C "$repo" add -A
git -C "$repo" commit -q -m head
head_sha="$(git -C "$repo" rev-parse HEAD)"

# --- The runner's environment.
event="$work/event.json"
cat >"$event" <<EOF
{"action": "opened", "number": 7,
 "pull_request": {"number": 7, "base": {"ref": "main", "sha": "$base_sha"},
                  "head": {"ref": "feature", "sha": "$head_sha"}}}
EOF
bin="$work/bin"
mkdir -p "$bin"
ln -s "$PBC_BIN" "$bin/pbc"

run_path="$PATH"
# run_action NAME PATH_PREFIX [INPUT=VALUE...]: runs the action in a fresh runner environment;
# leaves $out/{result.json,summary.md,log.txt}.
run_action() {
  local name="$1" path_prefix="$2"
  shift 2
  out="$work/$name"
  mkdir -p "$out/temp"
  : >"$out/summary.md"
  echo "=== scenario: $name"
  (
    cd "$repo"
    env PATH="$path_prefix:$run_path" \
      GITHUB_ACTIONS=true CI=true \
      GITHUB_WORKSPACE="$repo" GITHUB_EVENT_PATH="$event" GITHUB_EVENT_NAME=pull_request \
      GITHUB_STEP_SUMMARY="$out/summary.md" RUNNER_TEMP="$out/temp" \
      GITHUB_SHA="$head_sha" GITHUB_REPOSITORY=acme/playbooks \
      GITHUB_SERVER_URL=https://github.example \
      HOME="$out/home" \
      "$py" "$here/runner.py" "$repo_root" "$out/result.json" "$@"
  ) || {
    fail "$name: the runner refused the action (exit $?)"
    return 0
  }
  cp "$(field "$out/result.json" log)" "$out/log.txt"
}

# 1. Defaults on a pull request: annotations, SARIF, summary with the diff; fails on the error.
run_action defaults "$bin"
r="$out/result.json"
expect_eq "$(field "$r" outcome)" failure "defaults: outcome"
expect_eq "$(field "$r" failed_step)" Verdict "defaults: failing step"
expect_eq "$(field "$r" outputs.errors)" 1 "defaults: errors output"
expect_eq "$(field "$r" outputs.warnings)" 1 "defaults: warnings output"
expect_eq "$(field "$r" outputs.sarif-file)" pbc.sarif "defaults: sarif-file output"
expect_in "$out/log.txt" "Using $bin/pbc (pbc "
expect_in "$out/log.txt" "::error file=playbooks/base/review.yaml,line=16,col=7,endLine=16,endColumn=14,title=PB2001::unknown field \`aproval\` in stage \`deploy\`%0Ahelp: did you mean \`approval\`?"
expect_in "$out/log.txt" "::warning file=playbooks/base/review.yaml,line=19,col=7,endLine=19,endColumn=16,title=PB2013::"
expect_in "$out/log.txt" "pbc: 1 error(s), 1 warning(s); failing on: error"
if [[ -f "$repo/pbc.sarif" ]]; then
  "$py" - "$repo/pbc.sarif" <<'EOF' || fail "defaults: the SARIF file is not what was expected"
import json, sys
doc = json.load(open(sys.argv[1]))
run = doc["runs"][0]
assert doc["version"] == "2.1.0", doc["version"]
assert [r["ruleId"] for r in run["results"]] == ["PB2001", "PB2013"], run["results"]
assert run["results"][0]["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"] == "approval"
assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {"PB2001", "PB2013"}
EOF
  if [[ -x "$repo_root/.venv/bin/check-jsonschema" ]]; then
    "$repo_root/.venv/bin/check-jsonschema" --schemafile "$repo_root/testdata/reference/sarif/sarif-schema-2.1.0.json" \
      "$repo/pbc.sarif" || fail "defaults: the SARIF file is not valid against the SARIF schema"
  fi
else
  fail "defaults: no pbc.sarif in the workspace"
fi
s="$out/summary.md"
expect_in "$s" "## ❌ pbc: 1 error(s), 1 warning(s), 0 info(s)"
expect_in "$s" "| 1 | 1 | 0 |"
expect_in "$s" "### Top findings (2 of 2)"
expect_in "$s" "| error | PB2001 | [\`playbooks/base/review.yaml:16\`](https://github.example/acme/playbooks/blob/$head_sha/playbooks/base/review.yaml#L16) | unknown field \`aproval\` in stage \`deploy\` |"
expect_in "$s" "| warning | PB2013 |"
expect_in "$s" "<!-- pbc:coverage -->"
expect_in "$s" "<!-- /pbc:coverage -->"
expect_in "$s" "### Playbook changes against \`${base_sha:0:12}\`"
expect_in "$s" "#### Environment \`production\`"
expect_in "$s" "- \`review\` **changed** in \`playbooks/overlays/production\`"
expect_in "$s" "  - stage \`deploy\` **added** at position 3"
expect_in "$s" "  - stage \`notify\` **added** at position 4"
rm -f "$repo/pbc.sarif"

# 2. fail-on: never, no summary, SARIF elsewhere; pbc is not on PATH, so the action builds it
#    with cargo install (a stand-in cargo that records its arguments and links the real pbc).
fake="$work/fake-cargo"
mkdir -p "$fake"
cat >"$fake/cargo" <<EOF
#!/usr/bin/env bash
printf '%s\n' "\$@" >"$work/cargo-args.txt"
echo "CARGO_TARGET_DIR=\$CARGO_TARGET_DIR" >>"$work/cargo-args.txt"
root=""
while [[ \$# -gt 0 ]]; do [[ "\$1" == --root ]] && root="\$2"; shift; done
mkdir -p "\$root/bin" && ln -sf "$PBC_BIN" "\$root/bin/pbc"
EOF
chmod +x "$fake/cargo"
hidden_path="$(printf '%s' "$PATH" | tr ':' '\n' | while read -r d; do [[ -x "$d/pbc" ]] || printf '%s:' "$d"; done)"
run_path="$hidden_path"
run_action build-never "$fake" fail-on=never summary=false sarif-file=reports/pbc.sarif
run_path="$PATH"
r="$out/result.json"
expect_eq "$(field "$r" outcome)" success "build-never: outcome"
expect_eq "$(field "$r" outputs.errors)" 1 "build-never: errors output"
expect_eq "$(field "$r" outputs.sarif-file)" reports/pbc.sarif "build-never: sarif-file output"
[[ -s "$repo/reports/pbc.sarif" ]] || fail "build-never: no reports/pbc.sarif"
[[ -s "$out/summary.md" ]] && fail "build-never: a summary was written with summary: false"
expect_in "$work/cargo-args.txt" "install"
expect_in "$work/cargo-args.txt" "--locked"
expect_in "$work/cargo-args.txt" "$repo_root/cli"
expect_in "$work/cargo-args.txt" "CARGO_TARGET_DIR=$out/home/.cache/pbc-action/target"
expect_in "$out/log.txt" "Built pbc "
expect_in "$out/log.txt" "pbc: no job summary (summary: false)"
rm -rf "$repo/reports"

# 3. The error fixed in the working tree, a warning left: fail-on error passes, fail-on
#    warning fails; several paths, one per line.
sed -i.bak 's/aproval: manual/approval: auto/' "$repo/playbooks/base/review.yaml"
rm -f "$repo/playbooks/base/review.yaml.bak"
#    A pbc whose `coverage` prints a report (the shape of `pbc coverage --format json`) fills
#    the coverage slot of the summary.
covbin="$work/bin-coverage"
mkdir -p "$covbin"
cat >"$covbin/pbc" <<EOF
#!/usr/bin/env bash
if [[ "\$1" == coverage ]]; then
  cat <<'JSON'
{"catalogs": [{"id": "soc2", "title": "SOC 2"}],
 "environments": [{"environment": "production", "production": true, "playbooks": ["review"],
   "frameworks": [{"catalog": "soc2", "framework": "SOC2", "title": "SOC 2 <TSC>",
     "totals": {"controls": 61, "covered": 3, "claimed_without_evidence": 1,
                "claimed_no_rule": 0, "not_claimed": 57}, "controls": []}],
   "unresolved": []}]}
JSON
  exit 0
fi
exec "$PBC_BIN" "\$@"
EOF
chmod +x "$covbin/pbc"
run_action warning-ok "$covbin" "paths=playbooks/overlays/production
playbooks/base"
expect_in "$out/summary.md" "### Compliance coverage"
expect_in "$out/summary.md" "| production | SOC 2 &lt;TSC&gt; | 3 | 1 | 0 | 57 | 61 |"
#    The enforcement map (the real pbc): the gate everywhere, its approvers not in Argo (no
#    signed approvals configured) nor LangGraph.
expect_in "$out/summary.md" "### Enforcement map"
expect_in "$out/summary.md" "| playbook | control | where | local | serve | argo | langgraph |"
expect_in "$out/summary.md" "| review (production) | \`approval: manual\` | \`playbooks/base/review.yaml:12\` | ✅ | ✅ | ✅ | ✅ |"
expect_in "$out/summary.md" "| review (production) | \`approvers: release-manager\` | \`playbooks/base/review.yaml:13\` | ✅ | ✅ | ❌ not enforced | ❌ not enforced |"
expect_eq "$(field "$out/result.json" outcome)" success "warning-ok: outcome"
expect_eq "$(field "$out/result.json" outputs.errors)" 0 "warning-ok: errors output"
expect_eq "$(field "$out/result.json" outputs.warnings)" 1 "warning-ok: warnings output"
expect_in "$out/summary.md" "## ⚠️ pbc: 0 error(s), 1 warning(s), 0 info(s)"
run_action warning-fails "$bin" fail-on=warning
expect_eq "$(field "$out/result.json" outcome)" failure "warning-fails: outcome"
expect_eq "$(field "$out/result.json" failed_step)" Verdict "warning-fails: failing step"
git -C "$repo" checkout -q -- playbooks

# 4. A base the clone does not have (a shallow checkout): the summary says so, the log warns,
#    and the verdict is still about the findings.
run_action no-base "$bin" diff-base=0123456789abcdef0123456789abcdef01234567 fail-on=never
expect_eq "$(field "$out/result.json" outcome)" success "no-base: outcome"
expect_in "$out/summary.md" "could not be computed: unknown revision"
expect_in "$out/log.txt" "::warning title=pbc diff::no diff against 0123456789abcdef0123456789abcdef01234567: unknown revision"

# 5. A bad input stops the action at the check, with an error annotation; so does a path
#    that does not exist.
run_action bad-input "$bin" fail-on=sometimes
expect_eq "$(field "$out/result.json" outcome)" failure "bad-input: outcome"
expect_eq "$(field "$out/result.json" failed_step)" "Check playbooks" "bad-input: failing step"
expect_eq "$(field "$out/result.json" exit_code)" 2 "bad-input: exit code"
expect_in "$out/log.txt" "::error title=pbc::the input fail-on must be error, warning or never, not \`sometimes\`"
run_action no-path "$bin" paths=does/not/exist
expect_eq "$(field "$out/result.json" failed_step)" "Check playbooks" "no-path: failing step"
expect_in "$out/log.txt" "does/not/exist"

# 6. A reviewed exception in a protected environment: the production overlay turns the
#    merge gate automatic with a reason; the summary lists the suppression and its reason.
cat >"$repo/playbooks/overlays/production/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
patches:
  - path: merge.yaml
EOF
cat >"$repo/playbooks/overlays/production/merge.yaml" <<'EOF'
apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: review
spec:
  stages:
    - name: merge
      approval: auto  # pbc:allow(PB1031): merges are approved in the <b>merge queue</b>
EOF
run_action suppressed "$bin" fail-on=never
expect_eq "$(field "$out/result.json" outcome)" success "suppressed: outcome"
expect_in "$out/summary.md" "### Suppressed findings (1)"
expect_in "$out/summary.md" "| PB1031 | [\`playbooks/overlays/production/merge.yaml:8\`](https://github.example/acme/playbooks/blob/$head_sha/playbooks/overlays/production/merge.yaml#L8) | merges are approved in the &lt;b&gt;merge queue&lt;/b&gt; |"
git -C "$repo" checkout -q -- playbooks
rm -f "$repo/playbooks/overlays/production/merge.yaml"

if ((failures)); then
  echo "tests/action/run-action.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "tests/action/run-action.sh: all scenarios passed"
