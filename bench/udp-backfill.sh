#!/usr/bin/env bash
# bench/udp-backfill.sh -- share of 5,000 breaches that reach a same-host rsyslogd when
# "dtforward backfill" sends them over UDP, with the default SIEM_UDP_RATE and unpaced
# (SIEM_UDP_RATE=0), and the backfill's records/s for each (the cost of pacing).
# Bar: >= 99.5% arrive with the default. Needs rsyslogd (scripts/install-test-deps).
# Extra args go to the program, e.g.: bench/udp-backfill.sh -rates default,0,5000 -runs 5
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
go build -o "$tmp/dtforward-udp-backfill-bin" ./cmd/dtforward
go build -o "$tmp/dtforward-udp-backfill" ./bench/udp-backfill
exec "$tmp/dtforward-udp-backfill" -bin "$tmp/dtforward-udp-backfill-bin" "$@"
