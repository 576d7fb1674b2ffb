#!/usr/bin/env bash
# The action's run step: `xmeta COMMAND PATHS ARGS`, with its exit code and
# (plan) its summary as step outputs. Reads XMETA_COMMAND, XMETA_PATHS,
# XMETA_ARGS, XMETA_SARIF through env; the binary is on PATH (install.sh).
set -uo pipefail
set -f # PATHS and ARGS are split on spaces, never globbed

fail() {
  echo "::error title=xmeta::$1" >&2
  exit 1
}

read -r -a paths <<< "${XMETA_PATHS:-.}"
read -r -a args <<< "${XMETA_ARGS:-}"
out="${GITHUB_OUTPUT:?}"
summary=""
case "${XMETA_COMMAND:-}" in
  validate) set -- validate "${paths[@]}" --format github ${args[@]+"${args[@]}"} ;;
  lint)
    if [ -n "${XMETA_SARIF:-}" ]; then
      xmeta lint "${paths[@]}" --format sarif ${args[@]+"${args[@]}"} > "$XMETA_SARIF"
      echo "SARIF written to $XMETA_SARIF (exit $?)"
    fi
    set -- lint "${paths[@]}" --format github ${args[@]+"${args[@]}"}
    ;;
  plan)
    summary=$(mktemp "${RUNNER_TEMP:-/tmp}/xmeta-plan.XXXXXX")
    set -- plan "${paths[@]}" --detailed-exitcode --out "$summary" ${args[@]+"${args[@]}"}
    ;;
  apply) set -- apply "${paths[@]}" --detailed-exitcode ${args[@]+"${args[@]}"} ;;
  *) fail "command must be validate, lint, plan or apply (got \`${XMETA_COMMAND:-}\`)" ;;
esac

xmeta "$@"
code=$?
echo "exitcode=$code" >> "$out"
if [ -n "$summary" ] && [ -s "$summary" ]; then
  jq -r '.summary | "changes=\(.create + .update + .forget)", "requests=\(.requests)",
    "cost=\(.estimated_cost_usd // 0)"' "$summary" >> "$out"
fi
[ -n "$summary" ] && rm -f "$summary"
# 2 (changes present) is a result, not a failure.
[ "$code" -eq 0 ] || [ "$code" -eq 2 ] || exit "$code"
