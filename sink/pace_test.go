package sink_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/sink"
)

// TestUDPPacing: with a rate a batch goes out paced (it cannot finish sooner than the rate
// allows, and a real rsyslog receives every datagram the hook counted), and cancelling ctx
// stops a long paced batch at once instead of sleeping through it.
func TestUDPPacing(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{UDP: true})

	t.Run("paced batch arrives whole", func(t *testing.T) {
		const rate, n = 500, 300
		var datagrams atomic.Int64
		s := newSink(t, sink.Config{Transport: "udp", Address: r.UDP, UDPRate: rate,
			Hooks: sink.Hooks{Datagrams: func(k int) { datagrams.Add(int64(k)) }}})
		from := r.Count(t)
		start := time.Now()
		if err := s.Send(context.Background(), batch(0, n)); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		// A lower bound only: a loaded machine makes the batch slower, never faster. The
		// pacer lets an idle sink start with 10 ms of credit.
		if least := time.Duration(n-rate/100-1) * time.Second / rate; took < least {
			t.Errorf("%d datagrams at %d/s took %v; pacing allows no less than %v", n, rate, took, least)
		}
		got := r.WaitFrom(t, from, n, 10*time.Second)
		if len(got) != n || datagrams.Load() != n {
			t.Errorf("rsyslog received %d, hook counted %d datagrams; sent %d", len(got), datagrams.Load(), n)
		}
		for i, m := range got {
			if seq := seqOf(t, m.Raw); seq != i {
				t.Fatalf("datagram %d carries message %d", i, seq)
			}
		}
	})

	t.Run("cancel stops a paced batch", func(t *testing.T) {
		const rate, n = 50, 10000 // 200 s of sending if nothing stopped it
		var datagrams atomic.Int64
		s := newSink(t, sink.Config{Transport: "udp", Address: r.UDP, UDPRate: rate,
			Hooks: sink.Hooks{Datagrams: func(k int) { datagrams.Add(int64(k)) }}})
		from := r.Count(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.Send(ctx, batch(0, n)) }()
		r.WaitFrom(t, from, 3, 10*time.Second) // it is sending
		cancel()
		cancelled := time.Now()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Send kept sleeping after ctx was cancelled")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send after cancel = %v, want context.Canceled", err)
		}
		sent := datagrams.Load()
		if sent < 3 || sent >= n {
			t.Errorf("hook counted %d datagrams; want some but not all %d", sent, n)
		}
		got := r.WaitFrom(t, from, int(sent), 10*time.Second)
		if int64(len(got)) != sent {
			t.Errorf("rsyslog received %d datagrams, hook counted %d", len(got), sent)
		}
		t.Logf("cancelled after %d datagrams; Send returned %v after cancel", sent, time.Since(cancelled))
	})
}
