package sink_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testHost = "dt-fwd-1"

var kinds = []string{"modelbreach", "antigena", "aianalyst"}

// batch makes n messages numbered from first. Lines carry what real output carries: CEF
// escapes, pipes, tabs, UTF-8, JSON; message 3 of each batch smuggles an LF that would forge a
// second syslog message if it reached the wire.
func batch(first, n int) []sink.Message {
	msgs := make([]sink.Message, n)
	for i := range msgs {
		id := first + i
		line := fmt.Sprintf(`CEF:0|Darktrace|DCIP|6.2|%d|Model \| name ü|%d|externalId=%d msg=a\=b c\\d	tab cs2=x|y`, id, id%11, id)
		switch i % 4 {
		case 1:
			line = fmt.Sprintf(`{"id":%d,"msg":"quote \" and \\n escaped","kind":"json"}`, id)
		case 3:
			line = fmt.Sprintf("seq=%d user=alice\n<13>1 2026-01-01T00:00:00Z evil app - - - forged", id)
		}
		msgs[i] = sink.Message{Severity: id % 11, Kind: kinds[id%3], Line: []byte(line)}
	}
	return msgs
}

// wireLine is what the receiver must see as MSG: CR and LF replaced by spaces.
func wireLine(m sink.Message) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(string(m.Line))
}

// counters collects the hooks.
type counters struct {
	mu                                       sync.Mutex
	sent, bytes, errs, reconnects, sanitized int
	lastErr                                  error
}

func (c *counters) hooks() sink.Hooks {
	return sink.Hooks{
		Sent:      func(m, b int) { c.mu.Lock(); c.sent += m; c.bytes += b; c.mu.Unlock() },
		Error:     func(err error) { c.mu.Lock(); c.errs++; c.lastErr = err; c.mu.Unlock() },
		Reconnect: func() { c.mu.Lock(); c.reconnects++; c.mu.Unlock() },
		Sanitized: func(m int) { c.mu.Lock(); c.sanitized += m; c.mu.Unlock() },
	}
}

func newSink(t *testing.T, cfg sink.Config) sink.Sink {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = testHost
	}
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatalf("sink.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// checkMessage asserts that raw is exactly the message m with the configured header,
// byte for byte, and that an independent parser (go-syslog) reads the header fields back.
func checkMessage(t *testing.T, header, facility string, raw []byte, m sink.Message, since time.Time) {
	t.Helper()
	pid := os.Getpid()
	fac := map[string]int{"local4": 20, "user": 1, "local0": 16}[facility]
	pri := fac*8 + sink.SyslogSeverity(m.Severity)
	line := wireLine(m)
	switch header {
	case sink.HeaderNone:
		if string(raw) != line {
			t.Errorf("got  %q\nwant %q", raw, line)
		}
	case sink.HeaderRFC5424:
		prefix := "<" + strconv.Itoa(pri) + ">1 "
		if !bytes.HasPrefix(raw, []byte(prefix)) || len(raw) < len(prefix)+27 {
			t.Fatalf("no RFC 5424 prefix %q: %q", prefix, raw)
		}
		ts := string(raw[len(prefix) : len(prefix)+27])
		want := fmt.Sprintf("%s%s %s dtforward %d %s - %s", prefix, ts, testHost, pid, m.Kind, line)
		if string(raw) != want {
			t.Errorf("got  %q\nwant %q", raw, want)
		}
		sm, err := rfc5424.NewParser().Parse(raw)
		if err != nil {
			t.Fatalf("go-syslog rfc5424: %v: %q", err, raw)
		}
		msg := sm.(*rfc5424.SyslogMessage)
		checkBase(t, &msg.Base, pri, m.Kind, line, pid)
		if msg.Timestamp == nil || msg.Timestamp.Before(since.Add(-time.Second)) || msg.Timestamp.After(time.Now().Add(time.Second)) {
			t.Errorf("timestamp %v not within the test", msg.Timestamp)
		}
	case sink.HeaderRFC3164:
		prefix := "<" + strconv.Itoa(pri) + ">"
		if !bytes.HasPrefix(raw, []byte(prefix)) || len(raw) < len(prefix)+15 {
			t.Fatalf("no RFC 3164 prefix %q: %q", prefix, raw)
		}
		ts := string(raw[len(prefix) : len(prefix)+15])
		if _, err := time.Parse(time.Stamp, ts); err != nil {
			t.Errorf("timestamp %q: %v", ts, err)
		}
		want := fmt.Sprintf("%s%s %s dtforward[%d]: %s", prefix, ts, testHost, pid, line)
		if string(raw) != want {
			t.Errorf("got  %q\nwant %q", raw, want)
		}
		sm, err := rfc3164.NewParser(rfc3164.WithYear(rfc3164.CurrentYear{})).Parse(raw)
		if err != nil {
			t.Fatalf("go-syslog rfc3164: %v: %q", err, raw)
		}
		msg := sm.(*rfc3164.SyslogMessage)
		checkBase(t, &msg.Base, pri, "", line, pid)
	}
}

func checkBase(t *testing.T, b *syslog.Base, pri int, msgID, line string, pid int) {
	t.Helper()
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	if b.Priority == nil || int(*b.Priority) != pri {
		t.Errorf("parsed priority %v, want %d", b.Priority, pri)
	}
	if str(b.Hostname) != testHost || str(b.Appname) != "dtforward" || str(b.ProcID) != strconv.Itoa(pid) {
		t.Errorf("parsed host/app/procid = %s/%s/%s", str(b.Hostname), str(b.Appname), str(b.ProcID))
	}
	if msgID != "" && str(b.MsgID) != msgID {
		t.Errorf("parsed msgid %s, want %s", str(b.MsgID), msgID)
	}
	if str(b.Message) != line {
		t.Errorf("parsed message %q, want %q", str(b.Message), line)
	}
}

type starter func(testing.TB, syslogd.Options) *syslogd.Receiver

var daemons = []struct {
	name  string
	start starter
}{
	{"rsyslog", syslogd.StartRsyslog},
	{"syslog-ng", syslogd.StartSyslogNG},
}

// TestDelivery sends batches over every transport, header and framing to real rsyslog and
// syslog-ng, and checks that every message arrived intact, in order, none split or merged.
func TestDelivery(t *testing.T) {
	tests := []struct {
		name      string
		transport string
		header    string
		framing   string
		facility  string
		addr      func(*syslogd.Receiver) string
	}{
		{"udp rfc5424", "udp", "", "", "", func(r *syslogd.Receiver) string { return r.UDP }},
		{"tcp lf rfc5424", "tcp", "", sink.FramingLF, "", func(r *syslogd.Receiver) string { return r.TCP }},
		{"tcp octet-counting rfc5424", "tcp", "", sink.FramingOctet, "user", func(r *syslogd.Receiver) string { return r.Octet }},
		{"tls rfc5424", "tls", "", "", "local0", func(r *syslogd.Receiver) string { return r.TLS }},
		{"tcp lf rfc3164", "tcp", sink.HeaderRFC3164, sink.FramingLF, "", func(r *syslogd.Receiver) string { return r.TCP }},
		{"tcp lf none", "tcp", sink.HeaderNone, sink.FramingLF, "", func(r *syslogd.Receiver) string { return r.TCP }},
		{"udp none", "udp", sink.HeaderNone, "", "", func(r *syslogd.Receiver) string { return r.UDP }},
		{"tls rfc3164", "tls", sink.HeaderRFC3164, "", "", func(r *syslogd.Receiver) string { return r.TLS }},
	}
	for _, d := range daemons {
		t.Run(d.name, func(t *testing.T) {
			r := d.start(t, syslogd.Options{UDP: true, TCP: true, Octet: true, TLS: true})
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					var c counters
					s := newSink(t, sink.Config{
						Transport: tc.transport, Address: tc.addr(r), Header: tc.header, Framing: tc.framing,
						Facility: tc.facility, TLS: tlsFor(tc.transport, caFile(r)), Timeout: 5 * time.Second,
						Hooks: c.hooks(),
					})
					header := tc.header
					if header == "" {
						header = sink.HeaderRFC5424
					}
					facility := tc.facility
					if facility == "" {
						facility = "local4"
					}
					mark := r.Count(t)
					start := time.Now()
					var sent []sink.Message
					for b := 0; b < 3; b++ {
						msgs := batch(b*20, 20)
						if err := s.Send(context.Background(), msgs); err != nil {
							t.Fatalf("Send batch %d: %v", b, err)
						}
						sent = append(sent, msgs...)
					}
					got := r.WaitFrom(t, mark, len(sent), 10*time.Second)
					if len(got) != len(sent) {
						t.Fatalf("received %d messages, sent %d (split or merged?)", len(got), len(sent))
					}
					wantInput := map[string]string{"udp": "udp", "tls": "tls"}[tc.transport]
					if wantInput == "" {
						wantInput = map[string]string{sink.FramingLF: "tcp", sink.FramingOctet: "octet"}[tc.framing]
					}
					for i := range sent {
						if got[i].Input != wantInput {
							t.Errorf("message %d arrived on %s, want %s", i, got[i].Input, wantInput)
						}
						checkMessage(t, header, facility, got[i].Raw, sent[i], start)
					}
					c.mu.Lock()
					defer c.mu.Unlock()
					if c.sent != len(sent) || c.bytes <= 0 || c.sanitized != 15 || c.errs != 0 || c.reconnects != 0 {
						t.Errorf("hooks: sent=%d bytes=%d sanitized=%d errs=%d reconnects=%d; want %d, >0, 15, 0, 0",
							c.sent, c.bytes, c.sanitized, c.errs, c.reconnects, len(sent))
					}
				})
			}
		})
	}
}

func caFile(r *syslogd.Receiver) string {
	if r.CA == nil {
		return ""
	}
	return r.CA.CAFile
}

// sendUntil resends msgs until Send succeeds, restarting the receiver after the first
// failures; it returns how many attempts failed.
func sendUntil(t *testing.T, s sink.Sink, msgs []sink.Message, restart func()) int {
	t.Helper()
	for fails := 0; ; fails++ {
		err := s.Send(context.Background(), msgs)
		if err == nil {
			return fails
		}
		t.Logf("Send failed (will resend the batch): %v", err)
		if fails == 1 {
			restart()
		}
		if fails > 20 {
			t.Fatalf("Send still failing: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seqOf extracts the message number from a received raw message.
func seqOf(t *testing.T, raw []byte) int {
	t.Helper()
	for _, key := range []string{"externalId=", `"id":`, "seq="} {
		if i := bytes.Index(raw, []byte(key)); i >= 0 {
			rest := raw[i+len(key):]
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(string(rest[:j]))
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("no sequence number in %q", raw)
	return -1
}

// TestReceiverDownAndRestarted: a receiver that is not there makes Send fail (not hang);
// once it is up the same batch goes through; a receiver killed between batches and restarted
// loses nothing: the failed batch is resent whole, so there is no gap and at most one batch
// is duplicated.
func TestReceiverDownAndRestarted(t *testing.T) {
	for _, d := range daemons {
		for _, framing := range []string{sink.FramingLF, sink.FramingOctet} {
			t.Run(d.name+" "+framing, func(t *testing.T) {
				r := d.start(t, syslogd.Options{TCP: true, Octet: true})
				addr := r.TCP
				if framing == sink.FramingOctet {
					addr = r.Octet
				}
				r.Kill(t) // not listening at start
				var c counters
				s := newSink(t, sink.Config{Transport: "tcp", Address: addr, Framing: framing, Timeout: 2 * time.Second, Hooks: c.hooks()})
				const batches, per = 10, 10
				for b := 0; b < batches; b++ {
					msgs := batch(b*per, per)
					if b == 5 {
						// Kill mid-stream, after what was sent so far arrived (what a killed
						// receiver had read but not written is lost by the receiver, not by us).
						r.WaitFrom(t, 0, b*per, 10*time.Second)
						r.Kill(t)
					}
					fails := sendUntil(t, s, msgs, func() { r.Restart(t) })
					if (b == 0 || b == 5) && fails == 0 {
						t.Errorf("batch %d: Send succeeded with the receiver down", b)
					}
				}
				got := r.WaitFrom(t, 0, batches*per, 10*time.Second)
				next, dups := 0, 0
				for _, m := range got {
					n := seqOf(t, m.Raw)
					switch {
					case n == next:
						next++
					case n < next:
						dups++
					default:
						t.Fatalf("gap: got message %d, expected %d", n, next)
					}
				}
				if next != batches*per || dups > per {
					t.Errorf("delivered up to %d of %d, %d duplicates (allowed %d)", next, batches*per, dups, per)
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.errs < 2 || c.reconnects < 2 || c.lastErr == nil || !strings.Contains(c.lastErr.Error(), addr) {
					t.Errorf("hooks: errs=%d reconnects=%d last=%v", c.errs, c.reconnects, c.lastErr)
				}
				t.Logf("duplicates: %d, errors: %d, reconnects: %d", dups, c.errs, c.reconnects)
			})
		}
	}
}

// stalledListener accepts connections and never reads from them, like a collector whose
// disk is full, and returns its address.
func stalledListener(t *testing.T, tlsCfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	holdConns(t, l, tlsCfg)
	return l.Addr().String()
}

// holdConns accepts connections on l (completing the TLS handshake first with tlsCfg) and
// holds them open without reading until the test ends, when it closes l and them.
func holdConns(t *testing.T, l net.Listener, tlsCfg *tls.Config) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if tlsCfg != nil {
				tc := tls.Server(c, tlsCfg)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				_ = tc.Handshake() // then never read again
				c = tc
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
}

// TestStalledReceiver: a receiver that accepts but stops reading makes Send fail within
// Timeout (per write), never hang; cancelling ctx aborts a blocked Send at once.
func TestStalledReceiver(t *testing.T) {
	big := make([]sink.Message, 8000) // 8000 × 4 KiB = 32 MiB, far more than socket buffers
	line := bytes.Repeat([]byte("x"), 4096)
	for i := range big {
		big[i] = sink.Message{Kind: "modelbreach", Line: line}
	}
	ca := syslogd.NewCA(t)
	cert, err := tls.LoadX509KeyPair(ca.ServerCert, ca.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	tests := []struct {
		name      string
		transport string
		timeout   time.Duration
		cancelIn  time.Duration
		wantErr   string
		wantIs    error
		maxTime   time.Duration
	}{
		{"tcp write deadline", "tcp", 300 * time.Millisecond, 0, "timed out", nil, 5 * time.Second},
		{"tcp ctx cancelled", "tcp", time.Minute, 300 * time.Millisecond, "abandoned", context.Canceled, 5 * time.Second},
		{"tls write deadline", "tls", 300 * time.Millisecond, 0, "timed out", nil, 5 * time.Second},
		{"tls ctx cancelled", "tls", time.Minute, 300 * time.Millisecond, "abandoned", context.Canceled, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lcfg *tls.Config
			if tc.transport == "tls" {
				lcfg = srvTLS
			}
			addr := stalledListener(t, lcfg)
			var c counters
			s := newSink(t, sink.Config{Transport: tc.transport, Address: addr, Timeout: tc.timeout, Hooks: c.hooks(),
				TLS: tlsFor(tc.transport, ca.CAFile)})
			ctx := context.Background()
			if tc.cancelIn > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				timer := time.AfterFunc(tc.cancelIn, cancel)
				defer timer.Stop()
				defer cancel()
			}
			start := time.Now()
			err := s.Send(ctx, big)
			elapsed := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Send = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
			if elapsed > tc.maxTime {
				t.Errorf("Send took %v, want < %v", elapsed, tc.maxTime)
			}
			t.Logf("Send failed after %v: %v", elapsed, err)
			if c.errs != 1 {
				t.Errorf("Error hook called %d times", c.errs)
			}
			start = time.Now()
			if err := s.Close(); err != nil || time.Since(start) > time.Second {
				t.Errorf("Close after a stalled write: %v after %v", err, time.Since(start))
			}
		})
	}
}

// TestTLSFailures: a wrong CA or a missing client certificate is a clear error, and nothing
// reaches the receiver.
func TestTLSFailures(t *testing.T) {
	other := syslogd.NewCA(t)
	for _, d := range daemons {
		t.Run(d.name, func(t *testing.T) {
			r := d.start(t, syslogd.Options{MTLS: true})
			tests := []struct {
				name    string
				tls     tlsconfig.Options
				wantErr string // "" = delivered
			}{
				{"wrong CA", tlsconfig.Options{CAFile: other.CAFile, CertFile: r.CA.ClientCert, KeyFile: r.CA.ClientKey}, "certificate signed by unknown authority"},
				{"mTLS without client certificate", tlsconfig.Options{CAFile: r.CA.CAFile}, "client certificate"},
				{"mTLS wrong client certificate", tlsconfig.Options{CAFile: r.CA.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey}, "certificate"},
				{"mTLS", tlsconfig.Options{CAFile: r.CA.CAFile, CertFile: r.CA.ClientCert, KeyFile: r.CA.ClientKey}, ""},
				{"server name mismatch", tlsconfig.Options{CAFile: r.CA.CAFile, CertFile: r.CA.ClientCert, KeyFile: r.CA.ClientKey, ServerName: "siem.example"}, "siem.example"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					mark := r.Count(t)
					s := newSink(t, sink.Config{Transport: "tls", Address: r.TLS, TLS: tc.tls, Timeout: 2 * time.Second})
					msgs := batch(0, 3)
					err := s.Send(context.Background(), msgs)
					if tc.wantErr == "" {
						if err != nil {
							t.Fatalf("Send: %v", err)
						}
						got := r.WaitFrom(t, mark, 3, 10*time.Second)
						if len(got) != 3 {
							t.Fatalf("received %d", len(got))
						}
						return
					}
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("Send = %v, want an error containing %q", err, tc.wantErr)
					}
					t.Logf("error: %v", err)
					time.Sleep(200 * time.Millisecond)
					if n := r.Count(t) - mark; n != 0 {
						t.Errorf("receiver got %d messages", n)
					}
				})
			}
		})
	}
}

// captureListener records every byte sent to it, per connection, until the test ends.
type captureListener struct {
	l    net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	data []byte
}

func newCapture(t *testing.T) *captureListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &captureListener{l: l}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer conn.Close()
				buf := make([]byte, 64<<10)
				for {
					_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, err := conn.Read(buf)
					c.mu.Lock()
					c.data = append(c.data, buf[:n]...)
					c.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); c.wg.Wait() })
	return c
}

func (c *captureListener) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.data)
}

// TestTLSNothingInClear: against something that is not a TLS server, the only bytes that
// leave are the TLS ClientHello, never a message.
func TestTLSNothingInClear(t *testing.T) {
	c := newCapture(t)
	s := newSink(t, sink.Config{Transport: "tls", Address: c.l.Addr().String(), Timeout: 300 * time.Millisecond})
	err := s.Send(context.Background(), []sink.Message{{Kind: "modelbreach", Line: []byte("SECRET-ALERT-LINE")}})
	if err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("Send = %v, want a TLS handshake error", err)
	}
	got := c.bytes()
	if len(got) == 0 || got[0] != 0x16 {
		t.Errorf("first byte %x, want a TLS handshake record (16)", got[:min(1, len(got))])
	}
	if bytes.Contains(got, []byte("SECRET")) {
		t.Error("message sent in clear")
	}
}

// TestWireFraming looks at the exact bytes on a TCP connection: LF framing ends each message
// with exactly one LF, octet counting has the right length and no LF srslog would add.
func TestWireFraming(t *testing.T) {
	tests := []struct {
		name    string
		framing string
		header  string
		want    func(line string) string
	}{
		{"lf none", sink.FramingLF, sink.HeaderNone, func(l string) string { return l + "\n" }},
		{"octet none", sink.FramingOctet, sink.HeaderNone, func(l string) string { return strconv.Itoa(len(l)) + " " + l }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapture(t)
			s := newSink(t, sink.Config{Transport: "tcp", Address: c.l.Addr().String(), Framing: tc.framing, Header: tc.header})
			msgs := batch(0, 8)
			if err := s.Send(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, m := range msgs {
				want.WriteString(tc.want(wireLine(m)))
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(c.bytes()) < want.Len() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := string(c.bytes()); got != want.String() {
				t.Errorf("wire bytes:\n got %q\nwant %q", got, want.String())
			}
		})
	}
}

// TestUDP checks datagram boundaries on the wire and the size limit.
func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := newSink(t, sink.Config{Transport: "udp", Address: pc.LocalAddr().String(), Header: sink.HeaderNone})
	msgs := batch(0, 4)
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 70000)
	for i, m := range msgs {
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != wireLine(m) {
			t.Errorf("datagram %d = %q, want %q (no trailing LF)", i, got, wireLine(m))
		}
	}

	huge := []sink.Message{msgs[0], {Kind: "modelbreach", Line: bytes.Repeat([]byte("y"), sink.MaxDatagram+1)}}
	err = s.Send(context.Background(), huge)
	if !errors.Is(err, sink.ErrMessageTooLarge) {
		t.Fatalf("Send(huge) = %v, want ErrMessageTooLarge", err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := pc.ReadFrom(buf); err == nil {
		t.Errorf("something was sent of a rejected batch: %q", buf[:min(n, 80)])
	}
}

// TestInsecureSkipVerify warns once and still encrypts.
func TestInsecureSkipVerify(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{TLS: true})
	var logBuf bytes.Buffer
	log := zerolog.New(&logBuf)
	s := newSink(t, sink.Config{Transport: "tls", Address: r.TLS, TLS: tlsconfig.Options{InsecureSkipVerify: true}, Logger: &log})
	for i := 0; i < 2; i++ {
		if err := s.Send(context.Background(), batch(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	r.Wait(t, 2, 10*time.Second)
	if n := strings.Count(logBuf.String(), "verification"); n != 1 {
		t.Errorf("%d warnings, want 1: %s", n, logBuf.String())
	}
	if !strings.Contains(logBuf.String(), `"level":"warn"`) {
		t.Errorf("not a warning: %s", logBuf.String())
	}
}

// TestEmptySendConnects: an empty batch dials (for "dtforward check") and fails when nobody
// listens.
func TestEmptySendConnects(t *testing.T) {
	c := newCapture(t)
	s := newSink(t, sink.Config{Transport: "tcp", Address: c.l.Addr().String()})
	if err := s.Send(context.Background(), nil); err != nil {
		t.Fatalf("Send(nil) to a listener: %v", err)
	}
	s2 := newSink(t, sink.Config{Transport: "tcp", Address: syslogd.FreeAddr(t), Timeout: time.Second})
	if err := s2.Send(context.Background(), nil); err == nil {
		t.Fatal("Send(nil) with nobody listening: no error")
	}
}

// tlsFor is the TLS settings of a table-driven case: the CA for transport tls, none for the
// others (the sink refuses TLS settings on a transport that does not use them).
func tlsFor(transport, caFile string) tlsconfig.Options {
	if transport != "tls" {
		return tlsconfig.Options{}
	}
	return tlsconfig.Options{CAFile: caFile}
}
