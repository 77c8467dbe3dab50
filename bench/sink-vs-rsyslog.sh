#!/usr/bin/env bash
# bench/sink-vs-rsyslog.sh -- lines per CPU-second of dtforward's TCP syslog sink vs rsyslog's
# own forwarding (imfile -> omfwd) of the same lines to the same local receiver, and the ratio
# (bar: >= 1.0). Needs rsyslogd (scripts/install-test-deps). Extra args go to the program:
#   bench/sink-vs-rsyslog.sh -n 200000 -runs 3 -batch 500
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go build -o "${TMPDIR:-/tmp}/dtforward-sink-vs-rsyslog" ./bench/sink-vs-rsyslog
exec "${TMPDIR:-/tmp}/dtforward-sink-vs-rsyslog" "$@"
