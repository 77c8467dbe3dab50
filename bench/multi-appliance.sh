#!/usr/bin/env bash
# bench/multi-appliance.sh -- one dtforward process, many appliances (issue 13): the real
# "dtforward simulate --appliances N --history-count 20" and "dtforward run" with
# SIEM_TRANSPORT=file. Prints, for 1, 300 and 1000 appliances, the time until every breach is
# delivered, lines and unique ids, peak RSS and idle RSS (bar: 300 × 20 all delivered once,
# peak RSS <= 160 MB). RSS per idle appliance = (idle RSS at N − idle RSS at 1) / (N − 1).
# Extra args go to every run, e.g.: bench/multi-appliance.sh -interval 5s
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
go build -o "$tmp/dtforward-multi-bin" ./cmd/dtforward
go build -o "$tmp/dtforward-multi" ./bench/multi-appliance
for n in ${APPLIANCES:-1 300 1000}; do
  "$tmp/dtforward-multi" -bin "$tmp/dtforward-multi-bin" -appliances "$n" "$@"
done
