#!/usr/bin/env bash
# bench/same-ms-memory.sh -- peak RSS (VmHWM) of "dtforward run" when 100,000 breaches appear in
# the same millisecond (over the 5,000-record cap in a window that cannot be split) and when one
# breach carries a 20 MB description (issue 18 item 8); every pbid is checked to arrive exactly
# once in a real rsyslogd. With BASE=<commit> that commit is built too and measured first, on
# the same input, for a before -> after. Extra args go to the program (-n, -desc-mb).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="${TMPDIR:-/tmp}"
args=()
if [ -n "${BASE:-}" ]; then
  wt="$tmp/dtforward-same-ms-base-src"
  git worktree add -q --detach "$wt" "$BASE"
  trap 'git worktree remove --force "$wt"' EXIT
  (cd "$wt" && go build -o "$tmp/dtforward-same-ms-base" ./cmd/dtforward)
  args+=(-bin "$tmp/dtforward-same-ms-base")
fi
go build -o "$tmp/dtforward-same-ms-bin" ./cmd/dtforward
go build -o "$tmp/dtforward-same-ms-bench" ./bench/same-ms-memory
args+=(-bin "$tmp/dtforward-same-ms-bin")
"$tmp/dtforward-same-ms-bench" "${args[@]}" "$@"
