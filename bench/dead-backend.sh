#!/usr/bin/env bash
# bench/dead-backend.sh -- breaches lost when the TCP collector address accepts and drops
# connections for a while (load balancer with no healthy backend) before a real rsyslogd takes
# the port, during a "dtforward backfill". Bar: 0 lost. Needs rsyslogd
# (scripts/install-test-deps). Extra args go to the program, e.g.:
#   bench/dead-backend.sh -count 500 -dead 10s -reset
# To see the loss of an older build: go run ./bench/dead-backend -bin /path/to/old/dtforward
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
go build -o "$tmp/dtforward-dead-backend-bin" ./cmd/dtforward
go build -o "$tmp/dtforward-dead-backend" ./bench/dead-backend
exec "$tmp/dtforward-dead-backend" -bin "$tmp/dtforward-dead-backend-bin" "$@"
