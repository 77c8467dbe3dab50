package syslogd

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

// StartSyslogNG starts syslog-ng with the listeners o asks for: UDP and TCP are network()
// sources (LF-terminated frames on TCP), Octet is a syslog() source over TCP (octet-counted
// frames, RFC 6587 3.4.1) and TLS a syslog() source over TLS (RFC 5425). syslog-ng 3.38 has no
// auto-detecting framing, so unlike rsyslog each port takes exactly one framing: LF-framed
// data sent to the TLS port is rejected, which is what strict RFC 5425 receivers do.
//
// Raw bytes come from ${RAWMSG} with flags(store-raw-message); sources use flags(no-parse) so
// that a header-less or malformed message is still stored as received (when syslog-ng has to
// parse, it replaces an unparsable message by its own error message with an empty RAWMSG).
func StartSyslogNG(t testing.TB, o Options) *Receiver {
	t.Helper()
	bin := testtools.FindSyslogNG(t)
	r := &Receiver{Daemon: "syslog-ng", config: syslogNGConfig}
	r.command = func() *exec.Cmd {
		return bin.Command("-F", "--no-caps", "-f", filepath.Join(r.Dir, "daemon.conf"),
			"-R", filepath.Join(r.Dir, "persist"), "-c", filepath.Join(r.Dir, "ctl"),
			"-p", filepath.Join(r.Dir, "syslog-ng.pid"))
	}
	return startReceiver(t, r, o)
}

func syslogNGConfig(r *Receiver, o Options) (string, error) {
	if o.RELP || o.RELPTLS || o.SyncWrites {
		return "", fmt.Errorf("syslog-ng: RELP and SyncWrites are only available with rsyslog")
	}
	var b strings.Builder
	fmt.Fprintf(&b, `@version: 3.38
options { log-msg-size(%d); keep-hostname(yes); stats-freq(0); flush-lines(1); };
destination d_out { file(%q template("$(format-json input=${SOURCE} raw=${RAWMSG})\n")); };
`, o.MaxMessageSize, r.out)
	src := func(name, driver, addr, transport, extra string) {
		fmt.Fprintf(&b, "source %s { %s(ip(\"127.0.0.1\") port(%s) transport(%q) flags(no-parse, store-raw-message)%s); };\n",
			name, driver, port(addr), transport, extra)
		fmt.Fprintf(&b, "log { source(%s); destination(d_out); };\n", name)
	}
	if o.UDP {
		src("udp", "network", r.UDP, "udp", "")
	}
	if o.TCP {
		src("tcp", "network", r.TCP, "tcp", "")
	}
	if o.Octet {
		src("octet", "syslog", r.Octet, "tcp", "")
	}
	if o.TLS {
		verify := "optional-untrusted"
		if o.MTLS {
			verify = "required-trusted"
		}
		src("tls", "syslog", r.TLS, "tls", fmt.Sprintf(" tls(key-file(%q) cert-file(%q) ca-file(%q) peer-verify(%s))",
			o.CA.ServerKey, o.CA.ServerCert, o.CA.CAFile, verify))
	}
	return b.String(), nil
}
