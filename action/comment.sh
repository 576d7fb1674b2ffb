#!/usr/bin/env bash
# The action's `comment: true`: posts the plan's parts (plan-1.md, … in
# $1, written by `xmeta plan --format markdown --split`) on the pull request
# as one comment per part, each found again by its marker and updated in
# place; parts an older, longer plan left are deleted. Only comments of
# github-actions[bot] that start with the marker are touched. Reads
# GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_EVENT_PATH, GITHUB_API_URL,
# GITHUB_SHA, GITHUB_SERVER_URL, GITHUB_RUN_ID through env.
set -euo pipefail

fail() {
  echo "::error title=xmeta comment::$1" >&2
  exit 1
}

parts_dir=$1
pr=$(jq -r '.pull_request.number // empty' "${GITHUB_EVENT_PATH:?}")
if [ -z "$pr" ]; then
  echo "::notice title=xmeta comment::not a pull request: no comment posted"
  exit 0
fi
[[ $pr =~ ^[0-9]+$ ]] || fail "the event's pull request number is not a number"
[[ ${GITHUB_REPOSITORY:?} =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || fail "GITHUB_REPOSITORY is not owner/name"
[ -n "${GITHUB_TOKEN:-}" ] || fail "no token: give the action \`github-token\` (default: the job's token, which needs pull-requests: write)"
api=${GITHUB_API_URL:-https://api.github.com}
case "$api" in
  https://*) proto='=https' ;;
  http://127.0.0.1:* | http://localhost:*) proto='=http' ;;
  *) fail "GITHUB_API_URL must be https://" ;;
esac
repo_api="$api/repos/$GITHUB_REPOSITORY"

call() { # METHOD URL [BODY-FILE] -> the response on stdout; fails on non-2xx
  local args=(--proto "$proto" --silent --show-error --fail-with-body --retry 3
    -X "$1" -H "Authorization: Bearer $GITHUB_TOKEN"
    -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28" -H "Expect:")
  [ $# -lt 3 ] || args+=(-H "Content-Type: application/json" --data-binary "@$3")
  curl "${args[@]}" "$2" || fail "$1 $2 failed"
}

parts=0
while [ -f "$parts_dir/plan-$((parts + 1)).md" ]; do parts=$((parts + 1)); done
[ "$parts" -gt 0 ] || fail "the plan wrote no $parts_dir/plan-1.md"

# This bot's marker comments: "ID PART" lines, over every page.
existing=$(mktemp)
page=1
while :; do
  list=$(call GET "$repo_api/issues/$pr/comments?per_page=100&page=$page")
  [ "$(jq length <<< "$list")" -gt 0 ] || break
  jq -r '.[] | select(.user.login == "github-actions[bot]")
    | select(.body | startswith("<!-- xmeta-plan part "))
    | "\(.id) \(.body | split(" ")[3])"' <<< "$list" >> "$existing"
  page=$((page + 1))
done

run_url="${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY/actions/runs/${GITHUB_RUN_ID:-0}"
body=$(mktemp)
for k in $(seq 1 "$parts"); do
  {
    echo "<!-- xmeta-plan part $k -->"
    echo "Plan of commit \`${GITHUB_SHA:0:12}\` · [workflow run]($run_url)"
    echo
    cat "$parts_dir/plan-$k.md"
  } | jq -Rs '{body: .}' > "$body"
  id=$(awk -v k="$k" '$2 == k { print $1; exit }' "$existing")
  if [[ $id =~ ^[0-9]+$ ]]; then
    call PATCH "$repo_api/issues/comments/$id" "$body" > /dev/null
  else
    call POST "$repo_api/issues/$pr/comments" "$body" > /dev/null
  fi
done
# Parts of an older, longer plan would mislead: delete them.
awk -v n="$parts" '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && $2 > n { print $1 }' "$existing" |
  while read -r id; do
    call DELETE "$repo_api/issues/comments/$id" > /dev/null
  done
rm -f "$existing" "$body"
echo "plan posted on pull request #$pr in $parts comment(s)"
