#!/usr/bin/env bash
# Render a build's HTML report and screenshot the whole page in headless Chromium. Needs Debian's
# `chromium` package (apt-get install chromium; CHROMIUM=/path/to/chrome picks another binary).
# Usage: scripts/screenshot_report.sh OUT_DIR [PNG] [WIDTH]
#
# Chromium's --screenshot captures the window only, so the page is measured first: a copy of the
# report, with a script that writes the document's height into its title, is loaded at the same
# width (--dump-dom), then the screenshot is taken in a window exactly that tall.
set -euo pipefail
DIR=${1:?usage: screenshot_report.sh OUT_DIR [PNG] [WIDTH]}
PNG=${2:-$DIR/report.png}
WIDTH=${3:-1100}
CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" >/dev/null || { echo "error: $CHROMIUM not found; install it (apt-get install chromium) or set CHROMIUM" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
"$HERE/.venv/bin/datatune" report "$DIR" --html >/dev/null
PAGE="$(cd "$DIR" && pwd)/report.html"
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$PROFILE" --hide-scrollbars)
sed 's#</body>#<script>addEventListener("load", () => { document.title = "height=" + Math.ceil(document.documentElement.scrollHeight) })</script></body>#' \
  "$PAGE" >"$PROFILE/measure.html"
HEIGHT=$("$CHROMIUM" "${FLAGS[@]}" --window-size="$WIDTH,800" --dump-dom "file://$PROFILE/measure.html" 2>/dev/null \
  | grep -o '<title>height=[0-9]*' | grep -o '[0-9]*$' || true)
[ -n "$HEIGHT" ] || { echo "error: could not measure the height of $PAGE in $CHROMIUM" >&2; exit 1; }
"$CHROMIUM" "${FLAGS[@]}" --window-size="$WIDTH,$HEIGHT" --screenshot="$PNG" "file://$PAGE" 2>/dev/null
echo "$PNG (${WIDTH}x$HEIGHT)"
