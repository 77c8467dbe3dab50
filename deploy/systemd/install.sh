#!/bin/sh
# deploy/systemd/install.sh -- install dtforward as a systemd service (Debian, Ubuntu, RHEL, ...).
#
#   sudo deploy/systemd/install.sh ./dtforward public-token private-token
#
# Installs the binary, the unit, /etc/dtforward/dtforward.env (kept when it exists: edit it) and
# the token pair as root-only files that the unit hands to the service with LoadCredential=.
# Then: edit /etc/dtforward/dtforward.env, `systemctl daemon-reload && systemctl enable --now
# dtforward`. ROOT=/some/dir installs into that tree instead of / and skips systemctl (the test
# suite runs it that way on a clean directory).
set -eu

if [ "$#" -ne 3 ]; then
  echo "usage: $0 DTFORWARD_BINARY PUBLIC_TOKEN_FILE PRIVATE_TOKEN_FILE" >&2
  exit 2
fi
bin=$1 public=$2 private=$3
here=$(cd "$(dirname "$0")" && pwd)
root=${ROOT:-}

for f in "$bin" "$public" "$private" "$here/dtforward.service" "$here/dtforward.env.example"; do
  [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
done

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system"
install -d -m 0750 "$root/etc/dtforward"
install -m 0755 "$bin" "$root/usr/local/bin/dtforward"
install -m 0644 "$here/dtforward.service" "$root/etc/systemd/system/dtforward.service"
if [ -e "$root/etc/dtforward/dtforward.env" ]; then
  echo "kept the existing $root/etc/dtforward/dtforward.env"
else
  install -m 0640 "$here/dtforward.env.example" "$root/etc/dtforward/dtforward.env"
  echo "installed $root/etc/dtforward/dtforward.env: set DARKTRACE_URL and SIEM_* in it"
fi
install -m 0600 "$public" "$root/etc/dtforward/public-token"
install -m 0600 "$private" "$root/etc/dtforward/private-token"

if [ -z "$root" ]; then
  systemctl daemon-reload
  echo "next: edit /etc/dtforward/dtforward.env, then: systemctl enable --now dtforward"
fi
