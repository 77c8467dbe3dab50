package sink_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/sink"
)

// numbered returns n messages whose lines are "msg-0000", "msg-0001", ...
func numbered(first, n int) []sink.Message {
	msgs := make([]sink.Message, n)
	for i := range msgs {
		msgs[i] = sink.Message{Kind: "modelbreach", Line: []byte(fmt.Sprintf("msg-%04d", first+i))}
	}
	return msgs
}

func lines(msgs []sink.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Line)
	}
	return out
}

// relpSink builds a relp sink with bare lines (no syslog header), so that what the peer
// records is exactly the line.
func relpSink(t *testing.T, addr string, window int, timeout time.Duration, c *counters) sink.Sink {
	t.Helper()
	cfg := sink.Config{Transport: "relp", Address: addr, Header: sink.HeaderNone, Timeout: timeout,
		RELP: sink.RELPOptions{Window: window}}
	if c != nil {
		cfg.Hooks = c.hooks()
	}
	return newSink(t, cfg)
}

// checkNoGap asserts that every message of want was accepted, and that what was accepted is
// want in order with at most the given number of repeats: a resend starts again at the first
// unanswered message, never later.
func checkNoGap(t *testing.T, accepted, want []string, maxDup int) {
	t.Helper()
	seen := map[string]int{}
	for _, a := range accepted {
		seen[a]++
	}
	dups := 0
	for _, w := range want {
		switch n := seen[w]; {
		case n == 0:
			t.Errorf("%s was never accepted", w)
		case n > 1:
			dups += n - 1
		}
	}
	if dups > maxDup {
		t.Errorf("%d duplicates, want at most %d", dups, maxDup)
	}
	if len(accepted) != len(want)+dups {
		t.Errorf("accepted %d messages, want %d plus %d duplicates: %q", len(accepted), len(want), dups, accepted)
	}
}

// TestRELPSession: a session carries every message of several batches in order, with
// consecutive transaction numbers from 2 (1 is open), never more than Window unanswered, and
// Close ends it with a close command.
func TestRELPSession(t *testing.T) {
	var txnrs []int
	peer := newRELPPeer(t, func(s *peerSession) {
		if !s.open() {
			return
		}
		// Answer late, in bursts, so that the sink runs into its window.
		for {
			if err := s.readUntilQuiet(30 * time.Millisecond); err != nil {
				return
			}
			for len(s.out) > 0 {
				txnrs = append(txnrs, s.out[0].txnr)
				s.ack(0)
			}
		}
	})
	var c counters
	s := relpSink(t, peer.addr(), 8, 5*time.Second, &c)
	var want []string
	for i := 0; i < 3; i++ {
		b := numbered(i*40, 40)
		want = append(want, lines(b)...)
		if err := s.Send(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the close command", func() bool { _, _, _, closes, _ := peer.snapshot(); return len(closes) == 1 })
	accepted, conns, opens, closes, maxOut := peer.snapshot()
	if !slices.Equal(accepted, want) {
		t.Errorf("accepted %q,\nwant %q", accepted, want)
	}
	for i, tx := range txnrs {
		if tx != i+2 {
			t.Fatalf("answer %d was for txnr %d, want %d (txnrs %v)", i, tx, i+2, txnrs)
		}
	}
	if maxOut != 8 {
		t.Errorf("at most %d messages were unanswered at once, want the window of 8", maxOut)
	}
	if conns != 1 || opens != 1 || closes[0] != 122 {
		t.Errorf("connections %d, opens %d, close txnr %v; want 1, 1, [122]", conns, opens, closes)
	}
	if c.sent != 120 || c.errs != 0 || c.reconnects != 0 || c.bytes < 120*len("2 syslog 8 msg-0000\n") {
		t.Errorf("hooks: sent %d bytes %d errors %d reconnects %d", c.sent, c.bytes, c.errs, c.reconnects)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRELPLostConnection: when the receiver goes away after answering part of a batch, Send
// reconnects at once and resends exactly the unanswered messages, in order: no gap, and no
// message the receiver already accepted is sent again.
func TestRELPLostConnection(t *testing.T) {
	tests := []struct {
		name string
		end  func(s *peerSession) // after answering the first 5 messages of the first connection
	}{
		{"serverclose", func(s *peerSession) { s.write(0, "serverclose", "") }},
		{"closed without serverclose", func(*peerSession) {}},
		{"protocol error", func(s *peerSession) { _, _ = s.c.Write([]byte("99 rsp 6 200 OK\n")) }}, // txnr not in flight
		{"hang", func(s *peerSession) { s.hang() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peer := newRELPPeer(t, func(s *peerSession) {
				if !s.open() {
					return
				}
				if s.n > 0 {
					s.serve()
					return
				}
				if !s.readOut(12) {
					return
				}
				for i := 0; i < 5; i++ {
					s.ack(0)
				}
				tc.end(s)
			})
			var c counters
			s := relpSink(t, peer.addr(), 16, 500*time.Millisecond, &c)
			msgs := numbered(0, 40)
			if err := s.Send(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
			accepted, conns, _, _, _ := peer.snapshot()
			if !slices.Equal(accepted, lines(msgs)) {
				t.Errorf("accepted %q, want every message once, in order", accepted)
			}
			if conns != 2 || c.reconnects != 1 || c.errs != 0 || c.sent != 40 {
				t.Errorf("connections %d, reconnects %d, errors %d, sent %d; want 2, 1, 0, 40", conns, c.reconnects, c.errs, c.sent)
			}
		})
	}
}

// TestRELPOutOfOrderAnswers: the spec lets a server answer in any order; each answer settles
// its own message.
func TestRELPOutOfOrderAnswers(t *testing.T) {
	peer := newRELPPeer(t, func(s *peerSession) {
		if !s.open() {
			return
		}
		for {
			if !s.readOut(4) {
				return
			}
			for len(s.out) > 0 {
				s.ack(len(s.out) - 1)
			}
		}
	})
	s := relpSink(t, peer.addr(), 4, 5*time.Second, nil)
	msgs := numbered(0, 16)
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	accepted, _, _, _, _ := peer.snapshot()
	checkNoGap(t, accepted, lines(msgs), 0)
}

// TestRELPRefused: a non-200 answer is a RejectedError naming the message and the receiver's
// reason, once the rest of the window was answered (here: never; the connection is dropped
// after Timeout) and everything before it accepted; the next Send starts a new session.
func TestRELPRefused(t *testing.T) {
	peer := newRELPPeer(t, func(s *peerSession) {
		if !s.open() {
			return
		}
		if s.n > 0 {
			s.serve()
			return
		}
		if !s.readOut(5) {
			return
		}
		s.ack(0)
		s.ack(0)
		s.nack(0, "500 disk full")
		s.hang()
	})
	var c counters
	s := relpSink(t, peer.addr(), 8, 2*time.Second, &c)
	msgs := numbered(0, 5)
	err := s.Send(context.Background(), msgs)
	var rej *sink.RejectedError
	if !errors.As(err, &rej) || rej.Index != 2 || rej.Next != 3 || rej.Reason != "500 disk full" {
		t.Fatalf("Send error = %#v, want a RejectedError for message 2 (500 disk full)", err)
	}
	if c.errs != 1 || c.sent != 0 {
		t.Errorf("error hook %d, sent %d; want 1, 0", c.errs, c.sent)
	}
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatalf("resend: %v", err)
	}
	accepted, conns, _, _, _ := peer.snapshot()
	checkNoGap(t, accepted, lines(msgs), 2)
	if conns != 2 {
		t.Errorf("%d connections, want 2", conns)
	}
}

// TestRELPFailsWithoutProgress: a receiver that accepts connections but never answers (hung)
// or drops every session at once ends Send with an error after one new connection, so the
// caller backs off instead of the sink redialling in a tight loop.
func TestRELPFailsWithoutProgress(t *testing.T) {
	tests := []struct {
		name    string
		script  func(s *peerSession)
		errText string
	}{
		{"hung before open", func(s *peerSession) { s.hang() }, "waiting for the answer to open: no answer within 300ms (receiver hung?)"},
		{"hung after open", func(s *peerSession) {
			if s.open() {
				s.hang()
			}
		}, "no answer within 300ms (receiver hung?)"},
		{"drops every session", func(s *peerSession) {
			if s.open() {
				_, _ = s.read()
			}
		}, "EOF"},
		{"serverclose at once", func(s *peerSession) {
			if s.open() {
				s.write(0, "serverclose", "")
			}
		}, "receiver closed the session (serverclose)"},
		{"open refused", func(s *peerSession) { s.open("500 not accepting now") }, "receiver refused the session: 500 not accepting now"},
		{"no syslog command", func(s *peerSession) {
			s.open("200 OK\nrelp_version=0\ncommands=eventlog\n")
			s.hang()
		}, "receiver does not accept the syslog command"},
		{"no relp_version", func(s *peerSession) {
			s.open("200 OK\ncommands=syslog\n")
			s.hang()
		}, "no relp_version offer"},
		{"not RELP", func(s *peerSession) { _, _ = s.c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")); s.hang() }, "RELP protocol error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peer := newRELPPeer(t, tc.script)
			var c counters
			s := relpSink(t, peer.addr(), 8, 300*time.Millisecond, &c)
			err := s.Send(context.Background(), numbered(0, 3))
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("Send error = %v, want one saying %q", err, tc.errText)
			}
			if !strings.HasPrefix(err.Error(), "sink: relp "+peer.addr()+": ") {
				t.Errorf("error %q does not name the transport and address", err)
			}
			_, conns, _, _, _ := peer.snapshot()
			if conns != 1 || c.errs != 1 {
				t.Errorf("%d connections, %d errors; want 1, 1", conns, c.errs)
			}
		})
	}
}

// TestRELPStaleSession: a session the receiver ended between batches (serverclose, idle
// timeout, restart) costs a reconnect, not an error.
func TestRELPStaleSession(t *testing.T) {
	peer := newRELPPeer(t, func(s *peerSession) {
		if !s.open() {
			return
		}
		if s.n == 0 {
			_, _ = s.read()
			s.ack(0)
			s.write(0, "serverclose", "")
			return
		}
		s.serve()
	})
	var c counters
	s := relpSink(t, peer.addr(), 8, 2*time.Second, &c)
	if err := s.Send(context.Background(), numbered(0, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first session to end", func() bool { _, conns, _, _, _ := peer.snapshot(); return conns == 1 })
	time.Sleep(50 * time.Millisecond)
	if err := s.Send(context.Background(), numbered(1, 3)); err != nil {
		t.Fatalf("Send on the stale session: %v", err)
	}
	accepted, conns, _, _, _ := peer.snapshot()
	if !slices.Equal(accepted, lines(numbered(0, 4))) || conns != 2 || c.reconnects != 1 || c.errs != 0 {
		t.Errorf("accepted %q over %d connections, %d reconnects, %d errors", accepted, conns, c.reconnects, c.errs)
	}
}

// TestRELPContext: cancelling the context interrupts a Send waiting for answers at once,
// however long Timeout is; an expired context is not even tried.
func TestRELPContext(t *testing.T) {
	peer := newRELPPeer(t, func(s *peerSession) {
		if s.open() {
			s.hang()
		}
	})
	s := relpSink(t, peer.addr(), 8, time.Minute, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := s.Send(ctx, numbered(0, 3))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send error = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Send returned %v after the cancellation, with a 1-minute timeout", d)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer dcancel()
	if err := s.Send(dctx, numbered(0, 3)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send with a deadline: %v, want context.DeadlineExceeded", err)
	}
	if err := s.Send(dctx, numbered(0, 3)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send with an expired context: %v", err)
	}
	_, conns, _, _, _ := peer.snapshot()
	if conns != 2 {
		t.Errorf("%d connections, want 2 (none for the expired context)", conns)
	}
}

// TestRELPEmptySendOpensSession: an empty batch opens the session (what "dtforward check"
// relies on) and sends no message.
func TestRELPEmptySendOpensSession(t *testing.T) {
	peer, s, c := servedRELPSink(t)
	if err := s.Send(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	accepted, conns, opens, _, _ := peer.snapshot()
	if len(accepted) != 0 || conns != 1 || opens != 1 || c.sent != 0 {
		t.Errorf("accepted %q, %d connections, %d opens, sent %d", accepted, conns, opens, c.sent)
	}
	nobody := relpSink(t, syslogd.FreeAddr(t), 8, 2*time.Second, nil)
	if err := nobody.Send(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("empty Send to a closed port: %v, want connection refused", err)
	}
}

// TestRELPSanitizes: CR and LF inside a line become spaces, as with the other transports,
// so that a receiver writing lines cannot be made to split or forge a message.
func TestRELPSanitizes(t *testing.T) {
	peer, s, c := servedRELPSink(t)
	msgs := []sink.Message{{Line: []byte("a\nb\rc")}, {Line: []byte("clean")}}
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	accepted, _, _, _, _ := peer.snapshot()
	if !slices.Equal(accepted, []string{"a b c", "clean"}) || c.sanitized != 1 {
		t.Errorf("accepted %q, sanitized %d", accepted, c.sanitized)
	}
}

func TestRELPWindowValidation(t *testing.T) {
	for _, w := range []int{-1, sink.MaxRELPWindow + 1} {
		_, err := sink.New(sink.Config{Transport: "relp", Address: "127.0.0.1:2514", RELP: sink.RELPOptions{Window: w}})
		if err == nil || !strings.Contains(err.Error(), "relp_window") {
			t.Errorf("window %d: error %v", w, err)
		}
	}
	if _, err := sink.New(sink.Config{Transport: "relp", Address: "siem"}); err == nil || !strings.Contains(err.Error(), "is not host:port") {
		t.Errorf("address without port: %v", err)
	}
}

// servedRELPSink is a RELP sink (window 8, timeout 2 s) sending to a peer that opens every
// session and acknowledges every message, with the counters of the sink's hooks.
func servedRELPSink(t *testing.T) (*relpPeer, sink.Sink, *counters) {
	t.Helper()
	peer := newRELPPeer(t, func(s *peerSession) {
		if s.open() {
			s.serve()
		}
	})
	var c counters
	return peer, relpSink(t, peer.addr(), 8, 2*time.Second, &c), &c
}

// TestRELPRefusalInWindow: a receiver that refuses one message of a full window and accepts
// the others (as a RELP receiver may: every message has its own answer) gets a RejectedError
// whose Next says what it accepted after the refusal, so the caller resends none of it; nothing
// after the refused message is sent once it is refused, and the session stays open.
func TestRELPRefusalInWindow(t *testing.T) {
	peer := newRELPPeer(t, func(s *peerSession) {
		if !s.open() {
			return
		}
		if !s.readOut(8) {
			return
		}
		for i := range 8 {
			if i == 3 {
				s.nack(0, "500 message refused by rule")
			} else {
				s.ack(0)
			}
		}
		s.serve()
	})
	var c counters
	s := relpSink(t, peer.addr(), 8, 5*time.Second, &c)
	msgs := numbered(0, 12)
	err := s.Send(context.Background(), msgs)
	var rej *sink.RejectedError
	// Next is at least 8 (the window sent before the refusal); acknowledgements of 0-2 read
	// before the refusal free room for 8 and 9, so on a loaded machine they may be sent and
	// acknowledged too. Either way no message the receiver accepted may be sent again.
	if !errors.As(err, &rej) || rej.Index != 3 || rej.Next < 8 || rej.Next > len(msgs) || rej.Reason != "500 message refused by rule" {
		t.Fatalf("Send error = %v (%#v), want a RejectedError for message 3 with Next 8..12", err, rej)
	}
	if err := s.Send(context.Background(), msgs[rej.Next:]); err != nil {
		t.Fatalf("sending the rest: %v", err)
	}
	accepted, conns, _, _, _ := peer.snapshot()
	want := append(lines(msgs[:3]), lines(msgs[4:])...)
	if strings.Join(accepted, "\n") != strings.Join(want, "\n") {
		t.Errorf("receiver accepted:\n%s\nwant every message but the refused one, once, in order:\n%s",
			strings.Join(accepted, "\n"), strings.Join(want, "\n"))
	}
	if conns != 1 {
		t.Errorf("%d connections, want 1: a refusal is an answer, not a broken session", conns)
	}
}
