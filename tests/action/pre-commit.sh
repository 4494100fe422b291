#!/usr/bin/env bash
# Tests .pre-commit-hooks.yaml with pre-commit itself (`pre-commit try-repo`, pinned in
# tests/action/requirements.txt) on a fixture repository: the hooks run the workspace's pbc,
# fail on a playbook with an error and pass once it is fixed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
pre_commit="${PBC_PRE_COMMIT:-$repo_root/.venv/bin/pre-commit}"
if [[ -z "${PBC_BIN:-}" ]]; then
  (cd "$repo_root" && cargo build --quiet -p pbc)
  PBC_BIN="$repo_root/target/debug/pbc"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/repo/playbooks"
ln -s "$PBC_BIN" "$work/bin/pbc"
export PATH="$work/bin:$PATH" PRE_COMMIT_HOME="$work/pre-commit-home"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=pbc GIT_AUTHOR_EMAIL=pbc@example.com
export GIT_COMMITTER_NAME=pbc GIT_COMMITTER_EMAIL=pbc@example.com

cd "$work/repo"
git init -q -b main
cat >playbooks/job.yaml <<'YAML'
apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: job
spec:
  trigger: nightly
  stages:
    - name: run
      action: ops:run
      aproval: manual
YAML
git add -A

failures=0
for hook in pbc-check pbc-check-files; do
  if "$pre_commit" try-repo "$repo_root" "$hook" --all-files >"$work/$hook.log" 2>&1; then
    echo "FAIL: $hook passed on a playbook with an error" >&2
    failures=$((failures + 1))
  fi
  grep -q "PB2001" "$work/$hook.log" || {
    echo "FAIL: $hook did not report PB2001:" >&2
    cat "$work/$hook.log" >&2
    failures=$((failures + 1))
  }
done
sed -i.bak 's/aproval: manual/approval: auto/' playbooks/job.yaml && rm -f playbooks/job.yaml.bak
git add -A
for hook in pbc-check pbc-check-files; do
  "$pre_commit" try-repo "$repo_root" "$hook" --all-files >"$work/$hook.log" 2>&1 || {
    echo "FAIL: $hook failed on a clean playbook:" >&2
    cat "$work/$hook.log" >&2
    failures=$((failures + 1))
  }
done
if ((failures)); then
  exit 1
fi
echo "tests/action/pre-commit.sh: the hooks pass and fail as they should"
