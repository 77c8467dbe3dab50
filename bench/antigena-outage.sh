#!/usr/bin/env bash
# bench/antigena-outage.sh -- the Antigena states a sink that was down during the actions'
# lifecycle gets once it is back, and the ones counted as missed (issue 18 item 9). No extra
# tools needed. ~1 min. Extra args go to the run, e.g. -actions 200 -down 60s; BIN=path
# measures another dtforward binary (an older build, for a before/after).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
bin="${BIN:-$tmp/dtforward-antigena-outage-bin}"
[ -n "${BIN:-}" ] || go build -o "$bin" ./cmd/dtforward
go build -o "$tmp/dtforward-antigena-outage" ./bench/antigena-outage
"$tmp/dtforward-antigena-outage" -bin "$bin" "$@"
