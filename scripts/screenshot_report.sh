#!/usr/bin/env bash
# Render an airshed HTML report in headless Chromium and save a PNG screenshot of its first screen.
#
# Usage:   scripts/screenshot_report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
# Example: airshed report run.nc --out run.html && scripts/screenshot_report.sh run.html docs/report_screenshot.png
#
# Needs Chromium (Debian/Ubuntu: apt-get install -y chromium). The report is self-contained, so
# Chromium is started with networking effectively unused; a page that failed to render leaves no PNG
# and the script exits non-zero. Defaults: OUT = REPORT with .png, window 1100x1400 pixels.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
    echo "usage: $0 REPORT.html [OUT.png] [WIDTHxHEIGHT]" >&2
    exit 2
fi
report=$(realpath "$1")
out=${2:-${report%.html}.png}
size=${3:-1100x1400}
[[ -f "$report" ]] || { echo "error: report $report not found" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n "$browser" ]] || { echo "error: chromium not found (apt-get install -y chromium)" >&2; exit 2; }

out=$(realpath -m "$out")
rm -f "$out"
# a private profile folder keeps the run from touching the user's browser profile
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --window-size="${size/x/,}" --screenshot="$out" "file://$report" >/dev/null 2>&1
[[ -s "$out" ]] || { echo "error: chromium wrote no screenshot" >&2; exit 1; }
echo "wrote $out"
