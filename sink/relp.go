package sink

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/dtforward/dtforward/internal/tlsconfig"
)

// RELPOptions configures transport relp.
type RELPOptions struct {
	// Window is the most messages sent and not yet acknowledged; 0 means DefaultRELPWindow.
	// It also bounds how many messages a lost connection can duplicate.
	Window int
	// TLS turns on TLS (from the first byte, as imrelp's tls="on" expects) with Config.TLS.
	TLS bool
}

// DefaultRELPWindow is librelp's (and so rsyslog omrelp's) default window.
const DefaultRELPWindow = 128

// MaxRELPWindow bounds Window: a larger window only lets more duplicates pile up after a lost
// connection, and gains nothing on any network a SIEM sits on.
const MaxRELPWindow = 65536

// relpSink sends over RELP, the Reliable Event Logging Protocol of rsyslog's imrelp/omrelp:
// every message is a "syslog" command that the receiver answers with "200 OK" once it has
// taken the message. That is what plain TCP cannot give: bytes the kernel accepted for a
// collector that then hangs and dies are lost without any error, while a RELP message that
// got no answer is simply sent again.
//
// Send returns nil only when every message of the batch got "200". Up to Window messages
// are in flight at a time. When the connection breaks (EOF, reset, a missing answer within
// Timeout, serverclose, a protocol error), Send reconnects at once and resends the messages
// that have no answer yet, in order — as long as the broken connection had made progress
// (or was one left over from an earlier Send, which may simply have gone stale). A new
// connection that breaks before any answer ends Send with an error; the caller backs off and
// resends the batch. So nothing is skipped, and a failure duplicates at most Window
// messages inside Send (plus the acknowledged part of the batch when the caller resends it).
//
// A message answered with anything but 200 is refused: nothing more is sent, the answers to
// the rest of the window are awaited (up to Timeout), and Send returns a *RejectedError for the
// first refused message once every message before it was accepted, with Next past the
// messages accepted after it, so the caller resends neither. The session stays open.
type relpSink struct {
	cfg    Config
	hdr    *header
	tlsCfg *tls.Config
	window int

	conn   net.Conn      // nil when not connected; a *tls.Conn with TLS
	raw    net.Conn      // the TCP connection under conn
	br     *bufio.Reader // reads conn
	txnr   int           // next transaction number on conn
	dialed bool          // a connection was made before: later dials are reconnects
	closed bool
	// refused is set while Send returns a refusal (a RejectedError) on a connection that
	// remains usable.
	refused bool

	wbuf []byte // frames not yet written
	pbuf []byte // scratch for one message (header + line)

	// mu guards ctx, cancelled and deadline changes on conn against the context callback.
	mu        sync.Mutex
	ctx       context.Context
	cancelled bool
}

// relpSoftware is our relp_software offer (name, version, URL; only the name is required).
const relpSoftware = "dtforward"

func newRELP(cfg Config) (Sink, error) {
	// New has validated the window and filled in its default.
	s := &relpSink{cfg: cfg, hdr: newHeader(cfg, ""), window: cfg.RELP.Window, ctx: context.Background()}
	if cfg.RELP.TLS {
		c, err := tlsconfig.Client(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("sink: relp tls: %w", err)
		}
		s.tlsCfg = c
		if cfg.TLS.InsecureSkipVerify && cfg.Logger != nil {
			cfg.Logger.Warn().Str("address", cfg.Address).
				Msg("TLS certificate verification of the RELP receiver is disabled: anyone on the path can read and alter alerts")
		}
	}
	return s, nil
}

// inflight is a message sent on the current connection and not yet answered.
type inflight struct {
	txnr int
	idx  int // index in the batch
}

// Send delivers msgs; see relpSink. An empty batch only makes sure a session is open, which
// lets "dtforward check" test the sink.
func (s *relpSink) Send(ctx context.Context, msgs []Message) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return errors.New("sink: Send after Close")
	}
	s.mu.Lock()
	s.ctx, s.cancelled = ctx, false
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ctx != ctx {
			return // fired late, for a Send that is over
		}
		s.cancelled = true
		if s.conn != nil {
			_ = s.conn.SetDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		stop()
		s.mu.Lock()
		s.ctx = context.Background()
		s.mu.Unlock()
		if s.refused {
			// The session is fine: the receiver answered every message it was sent.
			s.refused = false
			if s.cfg.Hooks.Error != nil {
				s.cfg.Hooks.Error(err)
			}
			return
		}
		if err != nil {
			s.drop()
			err = fmt.Errorf("sink: relp %s: %w", s.cfg.Address, err)
			if s.cfg.Hooks.Error != nil {
				s.cfg.Hooks.Error(err)
			}
		}
	}()

	b := relpBatch{msgs: msgs}
	progress := false      // the current connection acknowledged something
	stale := s.conn != nil // the connection predates this Send
	for {
		if s.conn == nil {
			if err := s.connect(ctx); err != nil {
				return s.abandoned(ctx, err)
			}
		}
		if b.acked == len(msgs) {
			break
		}
		before := b.acked
		err := s.exchange(&b)
		if b.acked > before {
			progress = true
		}
		if b.refused != nil && (err == nil && len(b.pending) == 0 || err != nil && ctxDone(ctx) == nil) {
			// Every message of the window was answered (or the connection ended after the
			// refusal): report the refusal with what the receiver accepted around it.
			if rej := b.rejection(); rej != nil {
				if err != nil {
					s.drop()
				}
				s.refused = true
				return rej
			}
		}
		if err == nil {
			continue
		}
		if ctxDone(ctx) != nil || !progress && !stale {
			return s.abandoned(ctx, err)
		}
		// The connection broke after doing its part: resend what it left unanswered.
		s.drop()
		b.requeue()
		progress, stale = false, false
	}
	if b.sanitized > 0 && s.cfg.Hooks.Sanitized != nil {
		s.cfg.Hooks.Sanitized(b.sanitized)
	}
	if s.cfg.Hooks.Sent != nil && len(msgs) > 0 {
		s.cfg.Hooks.Sent(len(msgs), b.written)
	}
	return nil
}

// exchange fills the window with syslog commands, writes them, and handles the answers that
// arrive within Timeout (at least one).
func (s *relpSink) exchange(b *relpBatch) error {
	for len(b.pending) < s.window && b.canTake() {
		idx, fresh := b.take()
		m := &b.msgs[idx]
		line, changed := cleanLine(m.Line)
		if changed && fresh {
			b.sanitized++
		}
		s.pbuf = s.hdr.appendHeader(s.pbuf[:0], s.hdr.pri(m.Severity), m.Kind)
		s.pbuf = append(s.pbuf, line...)
		s.wbuf = appendRELPFrame(s.wbuf, s.txnr, "syslog", s.pbuf)
		b.pending = append(b.pending, inflight{txnr: s.txnr, idx: idx})
		s.txnr = nextTxnr(s.txnr)
		if len(s.wbuf) >= flushAt {
			n, err := s.flush()
			b.written += n
			if err != nil {
				return err
			}
		}
	}
	n, err := s.flush()
	b.written += n
	if err != nil {
		return err
	}
	return s.awaitAnswers(b)
}

// abandoned prefers the context's reason when the context ended the I/O.
func (s *relpSink) abandoned(ctx context.Context, err error) error {
	if cause := ctxDone(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("abandoned: %w (%v)", cause, err)
	}
	return err
}

// ctxDone is context.Cause, and DeadlineExceeded once the deadline has passed even if the
// context's timer has not fired yet: I/O deadlines are set to it and may expire first.
func ctxDone(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// awaitAnswers waits up to Timeout for the next frame and handles it and every further frame
// already received, removing answered messages from pending. It returns an error when the
// connection is no longer usable.
func (s *relpSink) awaitAnswers(b *relpBatch) error {
	if len(b.pending) == 0 {
		return nil
	}
	if err := s.deadline(false); err != nil {
		return err
	}
	quickAck(s.raw)
	for {
		f, err := readRELPFrame(s.br, relpMaxRspData)
		if err != nil {
			return s.readErr(err)
		}
		switch {
		case f.txnr == 0 && f.cmd == "serverclose":
			return errors.New("receiver closed the session (serverclose)")
		case f.txnr == 0:
			// another hint: none is defined besides serverclose; hints need no answer
		case f.cmd != "rsp":
			return fmt.Errorf("%w: server sent command %q with txnr %d", errRELPProtocol, f.cmd, f.txnr)
		default:
			i := slices.IndexFunc(b.pending, func(p inflight) bool { return p.txnr == f.txnr })
			if i < 0 {
				return fmt.Errorf("%w: answer for txnr %d, which is not waiting for one", errRELPProtocol, f.txnr)
			}
			rsp, err := parseRELPRsp(f.data)
			if err != nil {
				return err
			}
			idx := b.pending[i].idx
			b.pending = slices.Delete(b.pending, i, i+1)
			if rsp.code != 200 {
				// Refused for good. Nothing more is sent; the answers to the rest of the
				// window still come, and say what the receiver took after it.
				b.refuse(idx, rsp)
			} else {
				b.accept(idx)
			}
		}
		if len(b.pending) == 0 || s.br.Buffered() == 0 {
			return nil
		}
	}
}
