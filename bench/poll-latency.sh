#!/usr/bin/env bash
# bench/poll-latency.sh -- end-to-end latency of the real dtforward binary: the simulator
# creates 10 breaches/s, dtforward polls every 5 s and sends JSON over TCP to a local receiver;
# prints creation→arrival p50/p99/max (bar: p99 <= interval + 1 s) and the RSS of an idle
# daemon (bar: < 30 MB). Extra args go to the program:
#   bench/poll-latency.sh -duration 120s -rate 10 -interval 5s
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
go build -o "$tmp/dtforward-poll-latency-bin" ./cmd/dtforward
go build -o "$tmp/dtforward-poll-latency" ./bench/poll-latency
exec "$tmp/dtforward-poll-latency" -bin "$tmp/dtforward-poll-latency-bin" "$@"
