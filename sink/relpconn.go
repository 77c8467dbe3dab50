package sink

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// connect dials, runs the TLS handshake and opens the RELP session, all within Timeout.
func (s *relpSink) connect(ctx context.Context) error {
	if s.dialed && s.cfg.Hooks.Reconnect != nil {
		s.cfg.Hooks.Reconnect()
	}
	s.dialed = true
	dctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", s.cfg.Address)
	if err != nil {
		return err
	}
	conn := raw
	if s.tlsCfg != nil {
		cfg := s.tlsCfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(s.cfg.Address)
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = raw.Close()
			return handshakeError(err, cfg.ServerName)
		}
		conn = tc
	}
	s.mu.Lock()
	s.conn, s.raw = conn, raw
	s.mu.Unlock()
	if s.br == nil {
		s.br = bufio.NewReaderSize(conn, 4096)
	} else {
		s.br.Reset(conn)
	}
	s.wbuf = s.wbuf[:0]
	if err := s.open(); err != nil {
		s.drop()
		return err
	}
	return nil
}

// open runs the "open" command: offers out, the server's accepted offers back.
func (s *relpSink) open() error {
	s.txnr = 1
	offers := "relp_version=0\nrelp_software=" + relpSoftware + "\ncommands=syslog"
	s.wbuf = appendRELPFrame(s.wbuf, s.txnr, "open", []byte(offers))
	s.txnr = nextTxnr(s.txnr)
	if _, err := s.flush(); err != nil {
		return fmt.Errorf("sending open: %w", err)
	}
	if err := s.deadline(false); err != nil {
		return err
	}
	f, err := readRELPFrame(s.br, relpMaxRspData)
	if err != nil {
		return fmt.Errorf("waiting for the answer to open: %w", s.readErr(err))
	}
	if f.cmd != "rsp" || f.txnr != 1 {
		if f.txnr == 0 && f.cmd == "serverclose" {
			return errors.New("receiver closed the session instead of answering open (serverclose)")
		}
		return fmt.Errorf("%w: expected the answer to open, got %q with txnr %d", errRELPProtocol, f.cmd, f.txnr)
	}
	rsp, err := parseRELPRsp(f.data)
	if err != nil {
		return err
	}
	if rsp.code != 200 {
		return fmt.Errorf("receiver refused the session: %03d %s", rsp.code, rsp.text)
	}
	accepted := parseRELPOffers(rsp.rest)
	if _, ok := accepted["relp_version"]; !ok {
		return fmt.Errorf("%w: the answer to open has no relp_version offer", errRELPProtocol)
	}
	if !slices.Contains(accepted["commands"], "syslog") {
		return fmt.Errorf("receiver does not accept the syslog command (it offers commands=%v)", accepted["commands"])
	}
	return nil
}

// deadline arms the read (write=false) or write deadline: Timeout from now, or the
// context's deadline when earlier; an error once the context is cancelled.
func (s *relpSink) deadline(write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelled {
		return context.Cause(s.ctx)
	}
	d := time.Now().Add(s.cfg.Timeout)
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	if write {
		return s.conn.SetWriteDeadline(d)
	}
	return s.conn.SetReadDeadline(d)
}

// flush writes the buffered frames and returns how many bytes went out.
func (s *relpSink) flush() (int, error) {
	if len(s.wbuf) == 0 {
		return 0, nil
	}
	if err := s.deadline(true); err != nil {
		return 0, err
	}
	n, err := s.conn.Write(s.wbuf)
	s.wbuf = s.wbuf[:0]
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("write timed out after %v (receiver not reading?): %w", s.cfg.Timeout, err)
		}
		return n, err
	}
	return n, nil
}

func (s *relpSink) readErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer within %v (receiver hung?): %w", s.cfg.Timeout, err)
	}
	return err
}

// drop closes the connection without the close handshake. It closes the TCP connection
// directly: a TLS close_notify would be written into a connection known to be broken.
func (s *relpSink) drop() {
	s.mu.Lock()
	raw := s.raw
	s.conn, s.raw = nil, nil
	s.mu.Unlock()
	if raw != nil {
		_ = raw.Close()
	}
	s.wbuf = s.wbuf[:0]
}

// Close ends the session politely ("close", then wait up to Timeout for its answer) and
// closes the connection. Nothing is in flight: Send returns only when all was answered.
func (s *relpSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.conn == nil {
		return nil
	}
	defer s.drop()
	txnr := s.txnr
	s.wbuf = appendRELPFrame(s.wbuf[:0], txnr, "close", nil)
	if _, err := s.flush(); err != nil {
		return nil //nolint:nilerr // the receiver went away already: nothing is lost, nothing to report
	}
	if err := s.deadline(false); err != nil {
		return nil //nolint:nilerr // as above
	}
	for {
		f, err := readRELPFrame(s.br, relpMaxRspData)
		if err != nil || f.txnr == txnr || f.cmd == "serverclose" {
			break
		}
	}
	if tc, ok := s.conn.(*tls.Conn); ok {
		_ = tc.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
		_ = tc.CloseWrite() // close_notify, so the receiver sees an orderly end
	}
	return nil
}
