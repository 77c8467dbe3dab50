package syslogd_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tlsClient(t *testing.T, ca *syslogd.CA, withCert bool) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if withCert {
		c, err := tls.LoadX509KeyPair(ca.ClientCert, ca.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

func send(t *testing.T, network, addr string, cfg *tls.Config, data string) {
	t.Helper()
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.Dial("tcp", addr, cfg)
	} else {
		c, err = net.Dial(network, addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
}

// TestReceivers drives each daemon with hand-made frames and checks that the harness reports
// exactly the bytes sent, with the listener they arrived on: the harness itself is what every
// end-to-end test trusts.
func TestReceivers(t *testing.T) {
	msg := func(s string) string { return "<134>1 2026-01-02T03:04:05.000006Z host app - id - " + s }
	octet := func(s string) string { return itoa(len(s)) + " " + s }
	tests := []struct {
		name  string
		start func(*testing.T, syslogd.Options) *syslogd.Receiver
	}{
		{"rsyslog", func(t *testing.T, o syslogd.Options) *syslogd.Receiver { return syslogd.StartRsyslog(t, o) }},
		{"syslog-ng", func(t *testing.T, o syslogd.Options) *syslogd.Receiver { return syslogd.StartSyslogNG(t, o) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.start(t, syslogd.Options{UDP: true, TCP: true, Octet: true, TLS: true})
			cfg := tlsClient(t, r.CA, false)
			send(t, "udp", r.UDP, nil, msg("udp tab\there"))
			r.Wait(t, 1, 10*time.Second)
			send(t, "tcp", r.TCP, nil, msg("lf one")+"\n"+msg("lf two")+"\n")
			r.Wait(t, 3, 10*time.Second)
			send(t, "tcp", r.Octet, nil, octet(msg("octet with\nnewline"))+octet(msg("octet two")))
			r.Wait(t, 5, 10*time.Second)
			send(t, "tcp", r.TLS, cfg, octet(msg("tls one")))
			got := r.Wait(t, 6, 10*time.Second)
			want := []syslogd.Message{
				{Input: "udp", Raw: []byte(msg("udp tab\there"))},
				{Input: "tcp", Raw: []byte(msg("lf one"))},
				{Input: "tcp", Raw: []byte(msg("lf two"))},
				{Input: "octet", Raw: []byte(msg("octet with\nnewline"))},
				{Input: "octet", Raw: []byte(msg("octet two"))},
				{Input: "tls", Raw: []byte(msg("tls one"))},
			}
			if len(got) != len(want) {
				t.Fatalf("got %d messages, want %d: %q", len(got), len(want), got)
			}
			for i := range want {
				if got[i].Input != want[i].Input || string(got[i].Raw) != string(want[i].Raw) {
					t.Errorf("message %d = %s %q, want %s %q", i, got[i].Input, got[i].Raw, want[i].Input, want[i].Raw)
				}
			}

			// Restart keeps ports and output.
			r.Kill(t)
			if r.Running() {
				t.Fatal("still running after Kill")
			}
			r.Restart(t)
			mark := r.Count(t)
			send(t, "tcp", r.Octet, nil, octet(msg("after restart")))
			got = r.WaitFrom(t, mark, 1, 10*time.Second)
			if len(got) != 1 || string(got[0].Raw) != msg("after restart") {
				t.Fatalf("after restart got %q", got)
			}
		})
	}
}

// TestMTLS checks that the mTLS listener rejects a client without certificate and accepts
// one with the CA's client certificate.
func TestMTLS(t *testing.T) {
	for _, start := range []func(testing.TB, syslogd.Options) *syslogd.Receiver{syslogd.StartRsyslog, syslogd.StartSyslogNG} {
		r := start(t, syslogd.Options{MTLS: true})
		t.Run(r.Daemon, func(t *testing.T) {
			// Without a certificate: the handshake or the first read fails; nothing is logged.
			c, err := tls.Dial("tcp", r.TLS, tlsClient(t, r.CA, false))
			if err == nil {
				_, _ = c.Write([]byte("10 <14>1 - -"))
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			// rsyslog (GnuTLS) just closes the connection (EOF); syslog-ng sends an alert.
			if err == nil {
				t.Errorf("client without certificate: no error")
			}
			t.Logf("client without certificate: %v", err)
			send(t, "tcp", r.TLS, tlsClient(t, r.CA, true), "10 <14>1 - ok")
			send(t, "tcp", r.TLS, tlsClient(t, r.CA, true), "9 CEF:0|a|b")
			// A bare (header-less) line is received as is: syslog-ng runs with flags(no-parse).
			// The two messages came over two connections: no daemon orders messages across
			// connections (syslog-ng under load wrote them the other way round), so compare
			// them as a set.
			got := r.Wait(t, 2, 10*time.Second)
			raws := make([]string, 0, len(got))
			for _, m := range got {
				raws = append(raws, string(m.Raw))
			}
			slices.Sort(raws)
			if !slices.Equal(raws, []string{"<14>1 - ok", "CEF:0|a|b"}) {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
