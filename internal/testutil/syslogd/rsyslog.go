package syslogd

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

// StartRsyslog starts rsyslogd (imudp, imtcp, imtcp+gtls, imrelp) with the listeners o asks for.
//
// Receiver settings that matter for byte-exact assertions: control characters are not
// escaped on reception (rsyslog's default turns TAB into "#011"), and a trailing LF inside a
// message is kept (rsyslog's default drops one), so a stray newline inside an octet-counted
// frame or a datagram is visible. Every TCP and TLS listener accepts both LF and
// octet-counted frames, deciding per frame (supportOctetCountedFraming).
func StartRsyslog(t testing.TB, o Options) *Receiver {
	t.Helper()
	bin := testtools.FindRsyslog(t)
	r := &Receiver{Daemon: "rsyslog", config: rsyslogConfig}
	r.command = func() *exec.Cmd {
		cmd := exec.Command(bin.Bin, "-n", "-f", filepath.Join(r.Dir, "daemon.conf"), "-M", bin.ModDir,
			"-i", filepath.Join(r.Dir, "rsyslogd.pid"))
		cmd.Env = bin.Env()
		return cmd
	}
	return startReceiver(t, r, o)
}

func rsyslogConfig(r *Receiver, o Options) (string, error) {
	var b strings.Builder
	sync := ""
	if o.SyncWrites {
		// The ruleset runs in the input's own thread (no queue), and omfile writes at the end
		// of each message's transaction, before imrelp sends "200 OK".
		sync = ` queue.type="Direct"`
	}
	fmt.Fprintf(&b, `global(workDirectory=%q maxMessageSize="%d"
       parser.escapeControlCharactersOnReceive="off"
       parser.dropTrailingLFOnReception="off")
template(name="jsonl" type="list") {
  constant(value="{\"input\":\"") property(name="inputname")
  constant(value="\",\"raw\":\"") property(name="rawmsg" format="json")
  constant(value="\"}\n")
}
ruleset(name="recv"%s) {
  action(type="omfile" file=%q template="jsonl")
}
`, r.Dir, o.MaxMessageSize, sync, r.out)
	if o.UDP {
		fmt.Fprintf(&b, "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"%s\" ruleset=\"recv\" name=\"udp\")\n", port(r.UDP))
	}
	if o.TCP || o.Octet || o.TLS {
		b.WriteString("module(load=\"imtcp\" maxSessions=\"500\")\n")
	}
	tcp := func(name, addr string) {
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%s\" ruleset=\"recv\" name=\"%s\" supportOctetCountedFraming=\"on\")\n", port(addr), name)
	}
	if o.TCP {
		tcp("tcp", r.TCP)
	}
	if o.Octet {
		tcp("octet", r.Octet)
	}
	if o.TLS {
		auth := "anon"
		if o.MTLS {
			auth = "x509/certvalid"
		}
		fmt.Fprintf(&b, `input(type="imtcp" address="127.0.0.1" port="%s" ruleset="recv" name="tls" supportOctetCountedFraming="on"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode=%q
      streamDriver.CAFile=%q streamDriver.CertFile=%q streamDriver.KeyFile=%q)
`, port(r.TLS), auth, o.CA.CAFile, o.CA.ServerCert, o.CA.ServerKey)
	}
	if o.RELP || o.RELPTLS {
		// OpenSSL: imrelp's GnuTLS driver demands a client certificate whenever the server has
		// one, even without tls.authMode; with OpenSSL it is optional unless authMode asks.
		b.WriteString("module(load=\"imrelp\" tls.tlslib=\"openssl\")\n")
	}
	if o.RELP {
		fmt.Fprintf(&b, "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"%s\" ruleset=\"recv\" name=\"relp\" maxDataSize=\"%d\")\n",
			port(r.RELP), o.MaxMessageSize)
	}
	if o.RELPTLS {
		auth := ""
		if o.MTLS {
			auth = ` tls.authMode="certvalid"`
		}
		fmt.Fprintf(&b, `input(type="imrelp" address="127.0.0.1" port="%s" ruleset="recv" name="relptls" maxDataSize="%d"
      tls="on" tls.caCert=%q tls.myCert=%q tls.myPrivKey=%q%s)
`, port(r.RELPTLS), o.MaxMessageSize, o.CA.CAFile, o.CA.ServerCert, o.CA.ServerKey, auth)
	}
	return b.String(), nil
}
