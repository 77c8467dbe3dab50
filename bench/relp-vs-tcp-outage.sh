#!/usr/bin/env bash
# bench/relp-vs-tcp-outage.sh -- what "dtforward run" loses when the collector hangs and dies,
# over TCP and over RELP (issue 12). A live run against the simulator (40 breaches/s) into a
# real rsyslog that, four times, runs for 1 s, hangs for 3 s (SIGSTOP: the kernel still
# accepts bytes for it) and is killed (SIGKILL) and restarted. Prints per transport the
# breaches created, lost (never received), lost_%, duplicated and failed_batches, with rsyslog
# writing each message before taking the next ("sync") and with its default in-memory queue
# ("queued", where imrelp acknowledges a message once it is queued, not written).
# Needs rsyslogd with imrelp: eval "$(scripts/install-test-deps)". ~2 minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DTFORWARD_REQUIRE_TOOLS=1
exec go test ./cmd/dtforward -count=1 -run '^$' -bench 'HungAndKilledReceiver' -benchtime 1x "$@"
