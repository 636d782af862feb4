#!/usr/bin/env bash
# Render the HTML report in headless Chromium (Debian's `chromium`) and check
# that the page shows its plots: SVG elements and plotted paths in the DOM,
# and a non-blank screenshot. Skipped (77) only when chromium is absent.
set -u
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || { echo "chromium not installed: skipped"; exit 77; }
M="$MSCOPE_BUILD/tools/mscope"
D="$MSCOPE_SRC/tests/autofocus/data"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

chrome() {
  # A fresh profile each time; no network of any kind.
  timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$(mktemp -d -p "$T")" "$@" \
    2>>"$T/chrome.log"
}

for doc in basic hostile; do
  "$M" report -q "$D/$doc.json" --html "$T/$doc.html" || fail "render $doc"
  chrome --dump-dom "file://$T/$doc.html" >"$T/$doc.dom" || fail "chromium --dump-dom $doc: $(tail -3 "$T/chrome.log")"
  svgs=$(grep -o '<svg' "$T/$doc.dom" | wc -l)
  qlines=$(grep -o 'class="qline"' "$T/$doc.dom" | wc -l)
  paths=$(grep -o '<path' "$T/$doc.dom" | wc -l)
  rects=$(grep -o '<rect' "$T/$doc.dom" | wc -l)
  echo "$doc: $svgs svg, $paths path, $rects rect, $qlines queue lines"
  [ "$svgs" -eq 5 ] || fail "$doc: $svgs <svg> in the DOM, want 5"
  [ "$qlines" -eq 3 ] || fail "$doc: $qlines queue plots, want 3"
  # 6 blame bars (5 rules + below threshold), 1 arrow marker + 2 edges, 3 queue areas + 3 outlines.
  [ "$paths" -eq 15 ] || fail "$doc: $paths <path> in the DOM, want 15"
  # The queue outline is really plotted: a path with many segments.
  grep -o 'class="qline"[^>]*d="[^"]*"' "$T/$doc.dom" | awk -F'H' '{ if (NF < 50) bad = 1 } END { exit bad }' \
    || fail "$doc: a queue line has fewer than 50 segments"
  # The parser kept hostile strings as text: no element came from the document.
  grep -q '<script' "$T/$doc.dom" && fail "$doc: a <script> element in the DOM"
  grep -q '<img' "$T/$doc.dom" && fail "$doc: an <img> element in the DOM"
done
grep -q '&lt;script&gt;alert' "$T/hostile.dom" || fail "hostile: escaped text missing from the DOM"

chrome --window-size=1200,2600 --screenshot="$T/basic.png" "file://$T/basic.html" >/dev/null \
  || fail "chromium --screenshot: $(tail -3 "$T/chrome.log")"
size=$(stat -c %s "$T/basic.png" 2>/dev/null || echo 0)
[ "$size" -gt 50000 ] || fail "screenshot of $size bytes: blank page?"
[ "$(head -c 8 "$T/basic.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "not a PNG"
echo "ok (screenshot $size bytes)"
