#!/usr/bin/env bash
# The action's install step: downloads the release archive for this runner,
# checks it against the release's SHA256SUMS and keeps it in the tool
# cache. Reads (all through env, never `${{ }}` in the script): XMETA_VERSION
# or XMETA_ACTION_REF, XMETA_RELEASES_URL, RUNNER_OS, RUNNER_ARCH,
# RUNNER_TOOL_CACHE, RUNNER_TEMP; writes GITHUB_PATH and GITHUB_OUTPUT.
set -euo pipefail

fail() {
  echo "::error title=xmeta install::$1" >&2
  exit 1
}

version=${XMETA_VERSION:-}
if [ -z "$version" ]; then
  version=${XMETA_ACTION_REF:-}
  [ -n "$version" ] || fail "no version: set the action's \`version\` input (e.g. v0.1.0)"
fi
[[ $version == v* ]] || version="v$version"
# A tag, not a branch or a path: it becomes part of URLs and directories.
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
  fail "version \`$version\` is not a release tag such as v0.1.0 (with \`uses: …@main\`, set \`version\`)"

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  *) fail "xmeta has no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: there are Linux and macOS builds for X64 and ARM64" ;;
esac

base=${XMETA_RELEASES_URL:-https://github.com/xmeta-dev/xmeta/releases/download}
base=${base%/}
# https only; plain http only to this machine (a mirror in a test).
case "$base" in
  https://*) proto='=https' ;;
  http://127.0.0.1:* | http://localhost:*) proto='=http' ;;
  *) fail "releases-url must be https:// (got \`$base\`)" ;;
esac

asset="xmeta-$version-$target.tar.gz"
cache="${RUNNER_TOOL_CACHE:?}/xmeta/${version#v}/$target"
if [ -x "$cache/xmeta" ] && [ -f "$cache.complete" ]; then
  echo "xmeta $version ($target) from the tool cache"
else
  work=$(mktemp -d "${RUNNER_TEMP:-/tmp}/xmeta-install.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  fetch() { # URL FILE -> the HTTP status (000: no answer)
    curl --proto "$proto" --silent --show-error --location --retry 3 \
      --output "$2" --write-out '%{http_code}' "$1" || true
  }
  status=$(fetch "$base/$version/SHA256SUMS" "$work/SHA256SUMS")
  case "$status" in
    200) ;;
    404) fail "no release $version at $base (SHA256SUMS: HTTP 404); see the releases page for the versions that exist" ;;
    *) fail "cannot download $base/$version/SHA256SUMS (HTTP $status)" ;;
  esac
  want=$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1; exit }' "$work/SHA256SUMS")
  [ -n "$want" ] ||
    fail "release $version has no $target asset: SHA256SUMS lists no $asset"
  status=$(fetch "$base/$version/$asset" "$work/$asset")
  [ "$status" = 200 ] || fail "cannot download $asset of $version (HTTP $status)"
  if command -v sha256sum >/dev/null; then
    got=$(sha256sum "$work/$asset" | cut -d' ' -f1)
  else
    got=$(shasum -a 256 "$work/$asset" | cut -d' ' -f1)
  fi
  [ "$got" = "$want" ] ||
    fail "checksum mismatch for $asset: SHA256SUMS says $want, the download is $got; refusing it"
  mkdir -p "$work/unpacked"
  tar -xzf "$work/$asset" -C "$work/unpacked"
  binary="$work/unpacked/xmeta-$version-$target/xmeta"
  [ -f "$binary" ] && [ ! -L "$binary" ] || fail "$asset holds no xmeta-$version-$target/xmeta file"
  rm -rf "$cache" "$cache.complete"
  mkdir -p "$cache"
  install -m 0755 "$binary" "$cache/xmeta"
  touch "$cache.complete"
  echo "xmeta $version ($target) installed from $base, SHA-256 $got"
fi
echo "$cache" >> "${GITHUB_PATH:?}"
echo "path=$cache/xmeta" >> "${GITHUB_OUTPUT:?}"
