package sink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
)

// TestRELPToRsyslog sends batches through RELP into a real rsyslog imrelp and checks every
// message byte for byte, in order, with the header an independent parser reads back.
func TestRELPToRsyslog(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{RELP: true})
	var c counters
	s := newSink(t, sink.Config{Transport: "relp", Address: r.RELP, Hooks: c.hooks(), RELP: sink.RELPOptions{Window: 16}})
	since := time.Now()
	var all []sink.Message
	for i := 0; i < 5; i++ {
		b := batch(i*100, 100)
		all = append(all, b...)
		if err := s.Send(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	checkArrived(t, r, "relp", all, since)
	if c.sent != len(all) || c.reconnects != 0 || c.errs != 0 || c.sanitized != 125 {
		t.Errorf("hooks: sent %d reconnects %d errors %d sanitized %d", c.sent, c.reconnects, c.errs, c.sanitized)
	}
}

// TestRELPTLSToRsyslog: RELP over TLS into imrelp (tls="on"), verifying rsyslog's
// certificate against the CA; with mutual TLS (tls.authMode="certvalid") a client without a
// certificate is turned away and one with the CA's client certificate gets through.
func TestRELPTLSToRsyslog(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		t.Run(map[bool]string{false: "server auth", true: "mutual"}[mtls], func(t *testing.T) {
			r := syslogd.StartRsyslog(t, syslogd.Options{RELPTLS: true, MTLS: mtls})
			opts := tlsconfig.Options{CAFile: r.CA.CAFile}
			if mtls {
				bare := newSink(t, sink.Config{Transport: "relp", Address: r.RELPTLS, TLS: opts, Timeout: 2 * time.Second,
					RELP: sink.RELPOptions{TLS: true}})
				err := bare.Send(context.Background(), batch(0, 1))
				if err == nil {
					t.Fatal("a client without certificate got through mutual TLS")
				}
				t.Logf("without a client certificate: %v", err)
				opts.CertFile, opts.KeyFile = r.CA.ClientCert, r.CA.ClientKey
			}
			s := newSink(t, sink.Config{Transport: "relp", Address: r.RELPTLS, TLS: opts, RELP: sink.RELPOptions{TLS: true}})
			since := time.Now()
			msgs := batch(0, 50)
			if err := s.Send(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
			checkArrived(t, r, "relptls", msgs, since)
		})
	}
}

// TestRELPTLSWrongCA: a receiver whose certificate the configured CA did not sign is never
// sent a message.
func TestRELPTLSWrongCA(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{RELPTLS: true})
	other := syslogd.NewCA(t)
	s := newSink(t, sink.Config{Transport: "relp", Address: r.RELPTLS, TLS: tlsconfig.Options{CAFile: other.CAFile},
		Timeout: 2 * time.Second, RELP: sink.RELPOptions{TLS: true}})
	err := s.Send(context.Background(), batch(0, 1))
	if err == nil || !strings.Contains(err.Error(), "TLS handshake failed (nothing was sent)") {
		t.Fatalf("Send error = %v, want a failed handshake", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := r.Count(t); n != 0 {
		t.Errorf("rsyslog received %d messages", n)
	}
}

// TestRELPRsyslogRestarts: rsyslog stopped (SIGTERM: imrelp sends serverclose) or killed
// between batches and started again: the next Send notices the dead session, reconnects and
// delivers; nothing is lost.
func TestRELPRsyslogRestarts(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{RELP: true})
	var c counters
	s := newSink(t, sink.Config{Transport: "relp", Address: r.RELP, Header: sink.HeaderNone, Timeout: 2 * time.Second, Hooks: c.hooks()})
	var want []string
	for i, stop := range []func(testing.TB){r.Stop, r.Kill, r.Stop} {
		b := numbered(i*10, 10)
		want = append(want, lines(b)...)
		if err := s.Send(context.Background(), b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		r.Wait(t, len(want), 10*time.Second)
		stop(t)
		r.Restart(t)
	}
	b := numbered(30, 10)
	want = append(want, lines(b)...)
	if err := s.Send(context.Background(), b); err != nil {
		t.Fatalf("after the last restart: %v", err)
	}
	var got []string
	for _, m := range r.Wait(t, len(want), 10*time.Second) {
		got = append(got, string(m.Raw))
	}
	checkNoGap(t, got, want, 0)
	if c.reconnects != 3 || c.errs != 0 {
		t.Errorf("%d reconnects, %d errors; want 3, 0", c.reconnects, c.errs)
	}
}

// TestRELPHungThenKilledRsyslog is the failure plain TCP cannot survive, at the sink: a
// stream of numbered messages while rsyslog hangs (SIGSTOP: the kernel keeps accepting bytes
// for it), is killed (SIGKILL) and started again, twice. The sender retries a failed batch
// like the poller does. Every message arrives; rsyslog acknowledges only what it wrote
// (SyncWrites), so what it had acknowledged cannot die with it.
// cmd/dtforward's TestRunRELPSurvivesHungAndKilledReceiver runs the same against the daemon.
func TestRELPHungThenKilledRsyslog(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{RELP: true, SyncWrites: true})
	var c counters
	s := newSink(t, sink.Config{Transport: "relp", Address: r.RELP, Header: sink.HeaderNone, Timeout: 300 * time.Millisecond,
		Hooks: c.hooks(), RELP: sink.RELPOptions{Window: 32}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make(chan int, 1)
	go func() { // the sender: batches of 20, each retried until it is accepted
		n := 0
		defer func() { sent <- n }()
		for ctx.Err() == nil {
			b := numbered(n, 20)
			for s.Send(ctx, b) != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			n += len(b)
		}
	}()
	for i := 0; i < 2; i++ {
		time.Sleep(400 * time.Millisecond)
		r.Pause(t)
		time.Sleep(1500 * time.Millisecond)
		r.Kill(t)
		r.Restart(t)
	}
	time.Sleep(400 * time.Millisecond)
	cancel()
	n := <-sent
	got := map[string]bool{}
	for _, m := range r.Messages(t) {
		got[string(m.Raw)] = true
	}
	missing := 0
	for _, l := range lines(numbered(0, n)) {
		if !got[l] {
			missing++
		}
	}
	t.Logf("%d messages accepted by Send, %d distinct received, %d received in all, %d send errors, %d reconnects",
		n, len(got), r.Count(t), c.errs, c.reconnects)
	if n < 200 || missing != 0 || c.errs == 0 {
		t.Fatalf("%d of %d messages missing (send errors %d); the test needs ≥ 200 messages and the outages to show as errors",
			missing, n, c.errs)
	}
}

// checkArrived waits until rsyslog has as many messages as msgs and checks that they arrived
// on input, in order, each intact by checkMessage (RFC 5424 header, facility local4).
func checkArrived(t *testing.T, r *syslogd.Receiver, input string, msgs []sink.Message, since time.Time) {
	t.Helper()
	got := r.Wait(t, len(msgs), 10*time.Second)
	if len(got) != len(msgs) {
		t.Fatalf("rsyslog got %d messages, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if got[i].Input != input {
			t.Errorf("message %d arrived on %q", i, got[i].Input)
		}
		checkMessage(t, sink.HeaderRFC5424, "local4", got[i].Raw, msgs[i], since)
	}
}
