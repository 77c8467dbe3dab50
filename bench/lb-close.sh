#!/usr/bin/env bash
# bench/lb-close.sh -- breaches "dtforward run" loses over plain TCP when the collector side
# closes each connection after a while (a load balancer's or collector's idle/session timeout):
# after 400 ms and after 5 s (HAProxy-like), with a peer that reads everything until then
# (-mode all) and one that reads a first chunk and nothing more (-mode first: a proxy whose
# backend went away). No extra tools needed. ~4 min.
# Extra args go to both runs, e.g. -rate 20 -for 60s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
go build -o "$tmp/dtforward-lb-close-bin" ./cmd/dtforward
go build -o "$tmp/dtforward-lb-close" ./bench/lb-close
for mode in all first; do for after in 400ms 5s; do
	"$tmp/dtforward-lb-close" -bin "$tmp/dtforward-lb-close-bin" -after "$after" -mode "$mode" "$@"
done; done
