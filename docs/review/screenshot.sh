#!/usr/bin/env bash
# Renders xmeta's pull-request comment as GitHub shows it and takes a
# screenshot: the comment through cmarkgfm (GitHub's cmark), styled with
# github-markdown-css, in headless Chromium. Needs python3 with cmarkgfm,
# npm and chromium. Usage: docs/review/screenshot.sh COMMENT.md OUT.png [HEIGHT]
set -euo pipefail
md=$1 out=$2 height=${3:-1500}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --silent --no-audit --no-fund --prefix "$work" github-markdown-css@5.8.1 >/dev/null
python3 - "$md" "$work/page.html" "$work/node_modules/github-markdown-css/github-markdown-light.css" <<'PY'
import sys, cmarkgfm
from cmarkgfm.cmark import Options
md, page, css = sys.argv[1:]
body = cmarkgfm.github_flavored_markdown_to_html(open(md).read(), options=Options.CMARK_OPT_UNSAFE)
open(page, "w").write(f"""<!doctype html><meta charset=utf-8><style>{open(css).read()}
body {{ max-width: 980px; margin: 24px auto; }}</style>
<article class="markdown-body">{body}</article>""")
PY
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1100,"$height" --screenshot="$out" "file://$work/page.html" 2>/dev/null
