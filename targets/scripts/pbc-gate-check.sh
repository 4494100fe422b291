#!/bin/sh
# pbc gate check: the step after each Argo approval suspend (pbc's `argo` target).
#
# It passes on exactly `approve`, so that a rejected gate, and a gate whose suspend expired
# (Argo resumes an expired suspend as Succeeded, with the decision unset), never let the run
# go on. Inputs come through the environment, never through the script text:
#
#   PBC_MODE      final   exit 0 on `approve`, else fail (1 rejected, 2 expired, 3 other);
#                 level   one escalation level: `approve` -> outcome approve, exit 0;
#                         empty -> outcome expired, exit 0 (the next level opens, or the final
#                         check fails); `reject` -> exit 1; anything else -> exit 3;
#                 refuse  a `risk: high` stage: print the runbook in PBC_RUNBOOK, exit 4.
#   PBC_DECISION  the value supplied to the suspend (`approve` or `reject`), or empty.
#   PBC_GATE      the gate's name, for the log.
#   PBC_OUTCOME_FILE  where the outcome is written (read as the step's output parameter).
set -u
gate=${PBC_GATE:-gate}
decision=${PBC_DECISION-}
out=${PBC_OUTCOME_FILE:-/tmp/pbc-outcome}

outcome() {
  printf '%s' "$1" > "$out" 2>/dev/null || true
}

case "${PBC_MODE:-final}" in
  refuse)
    outcome refused
    printf '%s: refused (risk: high); nothing was executed. Runbook:\n%s\n' "$gate" "${PBC_RUNBOOK-}" >&2
    exit 4
    ;;
  level)
    if [ "$decision" = "approve" ]; then
      outcome approve
      printf '%s: approved\n' "$gate"
      exit 0
    fi
    if [ -z "$decision" ]; then
      outcome expired
      printf '%s: no decision before the deadline\n' "$gate"
      exit 0
    fi
    if [ "$decision" = "reject" ]; then
      outcome rejected
      printf '%s: rejected\n' "$gate" >&2
      exit 1
    fi
    outcome invalid
    printf '%s: not a decision: %s\n' "$gate" "$decision" >&2
    exit 3
    ;;
  final)
    if [ "$decision" = "approve" ]; then
      outcome approve
      printf '%s: approved\n' "$gate"
      exit 0
    fi
    if [ "$decision" = "reject" ]; then
      outcome rejected
      printf '%s: rejected\n' "$gate" >&2
      exit 1
    fi
    if [ -z "$decision" ] || [ "$decision" = "expired" ]; then
      outcome expired
      printf '%s: expired without approval\n' "$gate" >&2
      exit 2
    fi
    outcome invalid
    printf '%s: not approved: %s\n' "$gate" "$decision" >&2
    exit 3
    ;;
  *)
    printf '%s: unknown mode: %s\n' "$gate" "${PBC_MODE-}" >&2
    exit 5
    ;;
esac
