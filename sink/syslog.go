package sink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/RackSec/srslog"

	"github.com/dtforward/dtforward/internal/tlsconfig"
)

// syslogSink sends over UDP, TCP or TLS with github.com/RackSec/srslog.
//
// What srslog does, and what this sink adds around it:
//
//   - srslog.Writer turns each message into Framer(Formatter(priority, hostname, tag, msg))
//     and writes it with one conn.Write. Its formatters are not fit for SIEMs: RFC5424Formatter
//     uses os.Args[0] as APP-NAME and the tag as MSGID without validation, DefaultFormatter puts
//     a space after PRI. We install our own Formatter (header.appendHeader: sanitised
//     HOSTNAME/APP-NAME/MSGID, MSGID = Message.Kind, UTC timestamps with microseconds, no BOM)
//     and our own Framer (LF, octet counting, or nothing for UDP datagrams).
//   - srslog appends "\n" to every message before formatting, so it would sit inside an
//     octet-counted frame or a datagram. Our Formatter strips it there and keeps it as the
//     trailer of LF frames; our Framer adds the octet count.
//   - srslog has no deadlines: net.Dial without timeout and Write without deadline hang on a
//     dead or stalled collector. We dial through srslog.DialWithCustomDialer (network
//     "custom", which is what makes srslog call our DialFunc), with ctx and Timeout on dial
//     and TLS handshake, and hand srslog a net.Conn wrapper (deadlineConn) that puts a write
//     deadline on every write, aborts on ctx cancellation, and buffers a batch into few
//     writes.
//   - On a failed write srslog reconnects and writes the message once more by itself. That
//     would hide the failure, and on a new connection message i could arrive while earlier
//     messages of the batch died with the old one. Our DialFunc refuses to dial unless Send
//     asked for it, so srslog's retry fails; Send reports the original write error, drops the
//     connection, and the caller resends the whole batch (at-least-once). The next Send
//     dials again (lazy reconnect).
//   - TCP cannot tell a sender that bytes were lost when the collector closed the connection
//     between batches: the first write after the peer's FIN still "succeeds". Before each
//     batch we peek at the socket (non-blocking) and reconnect when the peer has gone, so a
//     collector restart between batches loses nothing.
//   - For the same reason a batch written into a connection the peer accepts and drops (a
//     load balancer with no backend, a collector at its session limit) would "succeed". After
//     each batch deadlineConn.confirm waits until the peer's kernel acknowledged every byte
//     and checks for a close or reset before Send returns nil.
//   - UDP has no flow control: a burst faster than the collector drains its socket buffer is
//     dropped by the collector's kernel without a word. With UDPRate the sink paces
//     datagrams (token bucket, see pacer), cancellable through ctx.
type syslogSink struct {
	cfg    Config
	hdr    *header
	tlsCfg *tls.Config // nil unless transport tls
	pace   *pacer      // nil unless transport udp with a rate limit

	w      *srslog.Writer
	conn   *deadlineConn
	dialed bool // a connection was dialled before: later dials are reconnects
	closed bool

	// Set during Send for the srslog callbacks, which get no context of their own.
	dialCtx context.Context
	dialing bool   // the DialFunc may dial
	kind    string // MSGID of the message being written
	fbuf    []byte // formatter scratch
}

var errNoSilentRedial = errors.New("srslog's internal redial refused: the caller resends the batch")

func newSyslog(cfg Config) (Sink, error) {
	framing := cfg.Framing
	if cfg.Transport == "udp" {
		framing = "" // one message per datagram, no trailer
	}
	s := &syslogSink{cfg: cfg, hdr: newHeader(cfg, framing)}
	if cfg.Transport == "udp" {
		s.pace = newPacer(cfg.UDPRate)
	}
	if cfg.Transport == "tls" {
		c, err := tlsconfig.Client(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("sink: tls: %w", err)
		}
		s.tlsCfg = c
		if cfg.TLS.InsecureSkipVerify && cfg.Logger != nil {
			cfg.Logger.Warn().Str("address", cfg.Address).
				Msg("TLS certificate verification of the syslog receiver is disabled: anyone on the path can read and alter alerts")
		}
	}
	return s, nil
}

// Send writes the batch; see Sink. An empty batch only makes sure a connection is up, which
// lets "dtforward check" test the sink without sending anything.
func (s *syslogSink) Send(ctx context.Context, msgs []Message) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return errors.New("sink: Send after Close")
	}
	defer func() {
		if err != nil {
			s.drop()
			if s.cfg.Hooks.Error != nil {
				s.cfg.Hooks.Error(err)
			}
		}
	}()
	if s.hdr.framing == "" {
		if err := s.checkDatagrams(msgs); err != nil {
			return err
		}
	}
	if s.w != nil && s.conn.peerGone() {
		s.drop()
	}
	fresh := s.w == nil
	if fresh {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	s.conn.begin(ctx)
	defer s.conn.end()
	if s.cfg.Transport == "udp" && s.cfg.Hooks.Datagrams != nil {
		conn := s.conn // runs before the deferred drop above
		defer func() { s.cfg.Hooks.Datagrams(conn.packets) }()
	}
	sanitized := 0
	for i := range msgs {
		line, changed := cleanLine(msgs[i].Line)
		if changed {
			sanitized++
		}
		if perr := s.pace.wait(ctx); perr != nil {
			return fmt.Errorf("sink: udp %s: %w", s.cfg.Address, perr)
		}
		s.kind = msgs[i].Kind
		if _, werr := s.w.WriteWithPriority(srslog.Priority(s.hdr.pri(msgs[i].Severity)), line); werr != nil {
			return s.writeErr(werr)
		}
	}
	if sanitized > 0 && s.cfg.Hooks.Sanitized != nil {
		s.cfg.Hooks.Sanitized(sanitized)
	}
	if ferr := s.conn.flush(); ferr != nil {
		return s.writeErr(ferr)
	}
	if cerr := s.conn.confirm(fresh); cerr != nil {
		return s.writeErr(cerr)
	}
	if s.cfg.Hooks.Sent != nil {
		s.cfg.Hooks.Sent(len(msgs), s.conn.takeWritten())
	}
	return nil
}

// writeErr prefers the error our conn saw over what srslog's refused redial returned.
func (s *syslogSink) writeErr(err error) error {
	if s.conn != nil && s.conn.err != nil {
		err = s.conn.err
	}
	return fmt.Errorf("sink: %s %s: %w", s.cfg.Transport, s.cfg.Address, err)
}

func (s *syslogSink) checkDatagrams(msgs []Message) error {
	for i := range msgs {
		if len(msgs[i].Line)+512 <= MaxDatagram {
			continue // headers are far shorter than 512 bytes
		}
		if n := s.hdr.headerLen(msgs[i].Kind) + len(msgs[i].Line); n > MaxDatagram {
			return fmt.Errorf("sink: udp %s: message %d of the batch is %d bytes, over the %d-byte datagram limit; nothing sent: %w",
				s.cfg.Address, i, n, MaxDatagram, ErrMessageTooLarge)
		}
	}
	return nil
}

func (s *syslogSink) connect(ctx context.Context) error {
	if s.dialed && s.cfg.Hooks.Reconnect != nil {
		s.cfg.Hooks.Reconnect()
	}
	s.dialed = true
	s.dialCtx, s.dialing = ctx, true
	w, err := srslog.DialWithCustomDialer("custom", s.cfg.Address, srslog.LOG_INFO, s.cfg.AppName, s.dial)
	s.dialCtx, s.dialing = nil, false
	if err != nil {
		if s.conn != nil {
			_ = s.conn.Close()
			s.conn = nil
		}
		return fmt.Errorf("sink: %s %s: %w", s.cfg.Transport, s.cfg.Address, err)
	}
	w.SetFormatter(s.format)
	w.SetFramer(s.frame)
	w.SetHostname(s.hdr.hostname)
	s.w = w
	return nil
}

// dial is the srslog DialFunc. srslog passes network "custom"; the transport comes from cfg.
func (s *syslogSink) dial(_, addr string) (net.Conn, error) {
	if !s.dialing {
		return nil, errNoSilentRedial
	}
	ctx, cancel := context.WithTimeout(s.dialCtx, s.cfg.Timeout)
	defer cancel()
	network := "tcp"
	if s.cfg.Transport == "udp" {
		network = "udp"
	}
	var d net.Dialer
	start := time.Now()
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	setup := time.Since(start) // the TCP handshake only: a TLS client-certificate probe waits on purpose
	tcp, _ := raw.(*net.TCPConn)
	if s.tlsCfg == nil {
		s.conn = newDeadlineConn(raw, tcp, s.cfg.Timeout, network == "tcp")
		s.conn.setup = setup
		return s.conn, nil
	}
	tc, err := s.handshake(ctx, raw, addr)
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	s.conn = newDeadlineConn(tc, tcp, s.cfg.Timeout, true)
	s.conn.setup = setup
	return s.conn, nil
}

// handshake runs the TLS handshake within ctx. With TLS 1.3 a server that requires a client
// certificate only rejects it after the client considers the handshake done, so the first
// batch would vanish; when the server asked for a certificate we wait briefly for that
// rejection and turn it into an error that says what to fix.
func (s *syslogSink) handshake(ctx context.Context, raw net.Conn, addr string) (*tls.Conn, error) {
	cfg := s.tlsCfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	certs := cfg.Certificates
	requested := false
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		requested = true
		if len(certs) > 0 {
			return &certs[0], nil
		}
		return &tls.Certificate{}, nil // send none; the server decides
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, handshakeError(err, cfg.ServerName)
	}
	if requested && tc.ConnectionState().Version >= tls.VersionTLS13 {
		if err := probeRejected(tc, min(s.cfg.Timeout/2, time.Second)); err != nil {
			if len(certs) == 0 {
				return nil, fmt.Errorf("TLS server closed the connection after asking for a client certificate: it requires mutual TLS and no client certificate is configured: %w", err)
			}
			return nil, fmt.Errorf("TLS server rejected the client certificate: %w", err)
		}
	}
	return tc, nil
}

// probeRejected reads for up to wait; a timeout means the server kept the connection.
func probeRejected(tc *tls.Conn, wait time.Duration) error {
	_ = tc.SetReadDeadline(time.Now().Add(wait))
	defer func() { _ = tc.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	_, err := tc.Read(b[:])
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// format is the srslog Formatter: our header, then the line. srslog has appended "\n" to
// the line; with LF framing that is exactly the frame trailer we want, so it stays (saving a
// copy per message); otherwise it is removed and frame adds the framing.
func (s *syslogSink) format(p srslog.Priority, _, _, content string) string {
	if s.hdr.framing != FramingLF {
		content = strings.TrimSuffix(content, "\n")
	}
	b := s.hdr.appendHeader(s.fbuf[:0], int(p), s.kind)
	b = append(b, content...)
	s.fbuf = b
	return string(b)
}

// frame is the srslog Framer: the octet-count prefix (RFC 6587 3.4.1 / RFC 5425); LF frames
// got their trailer from format, datagrams need none.
func (s *syslogSink) frame(in string) string {
	if s.hdr.framing == FramingOctet {
		return strconv.Itoa(len(in)) + " " + in
	}
	return in
}

func (s *syslogSink) drop() {
	if s.w != nil {
		_ = s.w.Close()
		s.w = nil
	}
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Close closes the connection. Send is not called after Close.
func (s *syslogSink) Close() error {
	s.closed = true
	s.drop()
	return nil
}
