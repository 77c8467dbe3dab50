package sink_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
)

// deadPeer listens on addr and accepts every connection only to drop it, like a load
// balancer with no healthy backend or a collector at its session limit. With reset it aborts
// the connection (SO_LINGER 0: RST) instead of closing it (FIN). With tlsCfg it completes the
// TLS handshake first, as a TLS-terminating proxy would.
func deadPeer(t *testing.T, addr string, tlsCfg *tls.Config, reset bool) (stop func()) {
	t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port was just released by the killed daemon
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tcp := c.(*net.TCPConn)
			if tlsCfg != nil {
				tc := tls.Server(c, tlsCfg)
				_ = tc.SetDeadline(time.Now().Add(2 * time.Second))
				_ = tc.Handshake()
			}
			if reset {
				_ = tcp.SetLinger(0)
			}
			_ = tcp.Close()
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { _ = l.Close(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// TestPeerAcceptsAndDrops: for a while the collector's address accepts connections and drops
// them without reading (closing or resetting); then a real rsyslog takes the port. Every
// Send during the dead period must fail (the caller keeps the batch and resends it), and in
// the end rsyslog has every message: no batch is reported delivered that went nowhere.
func TestPeerAcceptsAndDrops(t *testing.T) {
	const deadFor = 700 * time.Millisecond
	const batches, per = 20, 5
	for _, tc := range []struct {
		name      string
		transport string
		reset     bool
	}{
		{"tcp close", "tcp", false},
		{"tcp reset", "tcp", true},
		{"tls close", "tls", false},
		{"tls reset", "tls", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := syslogd.StartRsyslog(t, syslogd.Options{TCP: tc.transport == "tcp", TLS: tc.transport == "tls"})
			addr, framing := r.TCP, sink.FramingLF
			var srvTLS *tls.Config
			var opts tlsconfig.Options
			if tc.transport == "tls" {
				addr, framing = r.TLS, sink.FramingOctet
				cert, err := tls.LoadX509KeyPair(r.CA.ServerCert, r.CA.ServerKey)
				if err != nil {
					t.Fatal(err)
				}
				srvTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
				opts.CAFile = r.CA.CAFile
			}
			r.Kill(t)
			stopDead := deadPeer(t, addr, srvTLS, tc.reset)
			var c counters
			s := newSink(t, sink.Config{Transport: tc.transport, Address: addr, Framing: framing,
				TLS: opts, Timeout: 2 * time.Second, Hooks: c.hooks()})

			start := time.Now()
			switched := false
			deadOK, deadFailed := 0, 0
			for b := 0; b < batches; b++ {
				msgs := batch(b*per, per)
				for attempt := 0; ; attempt++ {
					if !switched && time.Since(start) > deadFor {
						stopDead()
						r.Restart(t)
						switched = true
					}
					err := s.Send(context.Background(), msgs)
					if !switched {
						if err == nil {
							deadOK++
						} else {
							deadFailed++
						}
					}
					if err == nil {
						break
					}
					if attempt > 300 {
						t.Fatalf("batch %d: Send still failing after rsyslog took over: %v", b, err)
					}
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(30 * time.Millisecond) // a live run: batches keep coming across the switch
			}
			if deadOK > 0 {
				t.Errorf("Send reported %d batches delivered while the peer dropped every connection", deadOK)
			}
			if deadFailed == 0 {
				t.Error("no Send failed during the dead period")
			}
			got := r.WaitFrom(t, 0, batches*per, 10*time.Second)
			seen := make(map[int]bool, batches*per)
			for _, m := range got {
				seen[seqOf(t, m.Raw)] = true
			}
			for n := 0; n < batches*per; n++ {
				if !seen[n] {
					t.Errorf("message %d never reached rsyslog", n)
				}
			}
			t.Logf("dead period: %d Sends failed, %d succeeded; rsyslog got %d messages for %d sent (duplicates %d)",
				deadFailed, deadOK, len(got), batches*per, len(got)-len(seen))
		})
	}
}

// TestUnacknowledgedBatchFails: a collector that accepts but whose kernel stops taking bytes
// (its tiny receive buffer is full and it never reads: hung, or its host gone) leaves the
// batch in our send queue. The write itself returns at once, so only the wait for the
// acknowledgement notices; the batch must fail within SIEM_TIMEOUT instead of being reported
// delivered.
func TestUnacknowledgedBatchFails(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		}); err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	holdConns(t, l, nil)
	const timeout = 500 * time.Millisecond
	var c counters
	s := newSink(t, sink.Config{Transport: "tcp", Address: l.Addr().String(), Timeout: timeout, Hooks: c.hooks()})
	msgs := make([]sink.Message, 8) // ~8 KiB: fits our send buffer, not the collector's window
	for i := range msgs {
		msgs[i] = sink.Message{Kind: "modelbreach", Line: bytes.Repeat([]byte("y"), 1000)}
	}
	start := time.Now()
	err = s.Send(context.Background(), msgs)
	if err == nil || !strings.Contains(err.Error(), "did not acknowledge") {
		t.Fatalf("Send = %v, want an error saying the collector did not acknowledge the batch", err)
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("Send failed after %v, before SIEM_TIMEOUT (%v) was up", took, timeout)
	}
	if c.errs != 1 || c.sent != 0 {
		t.Errorf("hooks: errs=%d sent=%d, want 1 and 0", c.errs, c.sent)
	}
	t.Logf("Send: %v", err)
}
