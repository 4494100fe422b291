#!/usr/bin/env bash
# Step 2 of the action: `pbc check` three times over the same paths (pbc is fast and
# deterministic): `--format github` on stdout, so that the findings annotate the pull request;
# `--format sarif` into the SARIF file; `--format json` for the job summary. Writes the
# outputs `errors`, `warnings`, `sarif-file` and `report` (the JSON file).
# Exit 2 when pbc could not run (bad input, a path that does not exist): the action stops.
set -uo pipefail

pbc="${PBC:-pbc}"
# Prints a workflow-command value: `%`, CR and LF escaped, so that no input can start a new
# command line.
escape() {
  local s="${1//%/%25}"
  s="${s//$'\r'/%0D}"
  printf '%s' "${s//$'\n'/%0A}"
}
fail() {
  echo "::error title=pbc::$(escape "$1")"
  exit 2
}

case "${PBC_FAIL_ON:-error}" in
  error | warning | never) ;;
  *) fail "the input fail-on must be error, warning or never, not \`${PBC_FAIL_ON}\`" ;;
esac
sarif="${PBC_SARIF_FILE:-pbc.sarif}"
case "$sarif" in
  *$'\n'* | "") fail "the input sarif-file must be one path" ;;
esac

# Paths: one per line when the input has several lines, else separated by blanks.
paths=()
if [[ "${PBC_PATHS:-}" == *$'\n'* ]]; then
  while IFS= read -r line; do
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    [[ -n "$line" ]] && paths+=("$line")
  done <<<"$PBC_PATHS"
else
  read -r -a paths <<<"${PBC_PATHS:-}"
fi
((${#paths[@]})) || paths=(.)

args=()
[[ -n "${PBC_CONFIG:-}" ]] && args+=(--config "$PBC_CONFIG")

out_dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/pbc-action"
mkdir -p "$out_dir" || fail "cannot create $out_dir"
report="$out_dir/check.json"
annotations="$out_dir/annotations.txt"

run() {
  # $1: format; stdout to $2. Exit 2 (pbc could not do its job) stops the action.
  "$pbc" check --format "$1" ${args[@]+"${args[@]}"} -- "${paths[@]}" >"$2"
  local code=$?
  if ((code >= 2)); then
    fail "pbc check could not run (exit $code): see the message above"
  fi
}

run github "$annotations"
cat "$annotations"
mkdir -p "$(dirname -- "$sarif")" || fail "cannot create the directory of $sarif"
run sarif "$sarif"
run json "$report"

errors=$(grep -c '^::error ' "$annotations")
warnings=$(grep -c '^::warning ' "$annotations")
echo "pbc check: $errors error(s), $warnings warning(s); SARIF in $sarif"
{
  echo "errors=$errors"
  echo "warnings=$warnings"
  echo "sarif-file=$sarif"
  echo "report=$report"
} >>"$GITHUB_OUTPUT"
