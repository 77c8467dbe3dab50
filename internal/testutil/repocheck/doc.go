// Package repocheck holds repository-level tests: the Dockerfile, the deploy/ manifests, the
// systemd unit, the README and the license files are checked like code, with the real tools
// where the machine has them (rsyslogd -N1, syslog-ng --syntax-only, systemd-analyze) and
// against dtforward's own configuration loader, so a manifest cannot drift from the program.
package repocheck
