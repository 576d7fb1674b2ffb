#!/usr/bin/env bash
# The action's run step: `xmeta COMMAND PATHS ARGS`, with its exit code and
# (plan) its summary as step outputs; with XMETA_COMMENT=true, plan also
# posts its markdown on the pull request (comment.sh). Reads XMETA_COMMAND,
# XMETA_PATHS, XMETA_ARGS, XMETA_SARIF, XMETA_COMMENT through env; the
# binary is on PATH (install.sh).
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
parts=""
case "${XMETA_COMMENT:-false}" in
  true | false) ;;
  *) fail "comment must be true or false (got \`${XMETA_COMMENT}\`)" ;;
esac
[ "${XMETA_COMMENT:-false}" = false ] || [ "${XMETA_COMMAND:-}" = plan ] ||
  fail "comment: true needs command: plan"
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
    set -- plan "${paths[@]}" --detailed-exitcode --out "$summary"
    if [ "${XMETA_COMMENT:-false}" = true ]; then
      # Parts of at most 64,000 bytes: with comment.sh's marker and header
      # each comment stays within GitHub's 65,536.
      parts=$(mktemp -d "${RUNNER_TEMP:-/tmp}/xmeta-comment.XXXXXX")
      set -- "$@" --format markdown --max-bytes 64000 --split "$parts"
    fi
    set -- "$@" ${args[@]+"${args[@]}"}
    ;;
  apply) set -- apply "${paths[@]}" --detailed-exitcode ${args[@]+"${args[@]}"} ;;
  *) fail "command must be validate, lint, plan or apply (got \`${XMETA_COMMAND:-}\`)" ;;
esac

xmeta "$@"
code=$?
echo "exitcode=$code" >> "$out"
if [ -n "$summary" ] && [ -s "$summary" ]; then
  # Streamed (the summary follows the changes): jq held the 880 MB plan
  # of 1,000,000 media whole in 5.2 GiB, most of a hosted runner's 7 GB,
  # and 6 times any plan's size; streamed, in 3 MB and twice the time.
  jq -n -r --stream 'first(fromstream(1 | truncate_stream(inputs | select(.[0][0] == "summary"))))
    | "changes=\(.create + .update + .forget)", "requests=\(.requests)",
      "cost=\(.estimated_cost_usd // 0)"' "$summary" >> "$out"
fi
[ -z "$summary" ] || rm -f "$summary"
if [ -n "$parts" ]; then
  # Also when the manifests do not validate: the comment lists the errors.
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$parts/plan-1.md" ]; then
    cat "$parts/plan-1.md" >> "$GITHUB_STEP_SUMMARY"
  fi
  "$(dirname "$0")/comment.sh" "$parts" || code=1
  rm -rf "$parts"
fi
# 2 (changes present) is a result, not a failure.
[ "$code" -eq 0 ] || [ "$code" -eq 2 ] || exit "$code"
exit 0
