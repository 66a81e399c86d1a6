#!/usr/bin/env bash
# Render a build's HTML report and screenshot it in headless Chromium (Debian's `chromium` package:
# apt-get install chromium). Usage: scripts/screenshot_report.sh OUT_DIR [PNG]
set -euo pipefail
DIR=${1:?usage: screenshot_report.sh OUT_DIR [PNG]}
PNG=${2:-$DIR/report.png}
HERE=$(cd "$(dirname "$0")/.." && pwd)
"$HERE/.venv/bin/datatune" report "$DIR" --html >/dev/null
PROFILE=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$PROFILE" --hide-scrollbars \
  --window-size=1100,2600 --screenshot="$PNG" "file://$(cd "$DIR" && pwd)/report.html" 2>/dev/null
rm -rf "$PROFILE"
echo "$PNG"
