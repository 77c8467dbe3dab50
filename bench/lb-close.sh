#!/usr/bin/env bash
# bench/lb-close.sh -- breaches "dtforward run" loses over plain TCP when the collector side
# closes each connection after a while (a load balancer's or collector's idle/session timeout):
# once with a 400 ms peer, once with a 5 s one (HAProxy-like). No extra tools needed. ~2 min.
# Extra args go to both runs, e.g. -rate 20 -for 60s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
go build -o "$tmp/dtforward-lb-close-bin" ./cmd/dtforward
go build -o "$tmp/dtforward-lb-close" ./bench/lb-close
for mode in "" -once; do for after in 400ms 5s; do
	"$tmp/dtforward-lb-close" -bin "$tmp/dtforward-lb-close-bin" -after "$after" $mode "$@"
done; done
