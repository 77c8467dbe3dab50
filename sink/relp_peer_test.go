package sink_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// relpPeer is a scripted RELP server on 127.0.0.1, for what a real rsyslog cannot be made to
// do on demand: refuse a message, answer out of order, close after some answers, hang at a
// chosen point. Each connection runs script with a session; the peer records every message
// it answered with 200, in the order it answered them.
type relpPeer struct {
	l      net.Listener
	wg     sync.WaitGroup
	script func(s *peerSession)

	mu       sync.Mutex
	accepted []string // payloads answered with 200, all connections, in answer order
	conns    int
	opens    int
	closes   []int // txnr of each close command seen
	maxOut   int   // most syslog commands seen without an answer at one time
}

func newRELPPeer(t *testing.T, script func(s *peerSession)) *relpPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &relpPeer{l: l, script: script}
	var live sync.Map // open connections, closed at cleanup so no script blocks forever
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			live.Store(c, true)
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
			p.wg.Add(1)
			go func(n int) {
				defer p.wg.Done()
				defer c.Close()
				defer live.Delete(c)
				s := &peerSession{n: n, c: c, br: bufio.NewReader(c), p: p}
				script(s)
			}(n)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		live.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		p.wg.Wait()
	})
	return p
}

func (p *relpPeer) addr() string { return p.l.Addr().String() }

func (p *relpPeer) snapshot() (accepted []string, conns, opens int, closes []int, maxOut int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.accepted...), p.conns, p.opens, append([]int(nil), p.closes...), p.maxOut
}

// errSessionClosed ends a script: the client sent close, and the peer answered it.
var errSessionClosed = errors.New("session closed by the client")

// peerFrame is a frame as the peer parsed it.
type peerFrame struct {
	txnr int
	cmd  string
	data string
}

// peerSession is one connection of the peer.
type peerSession struct {
	n   int // connection number, from 0
	c   net.Conn
	br  *bufio.Reader
	p   *relpPeer
	out []peerFrame // syslog commands read and not yet answered, in order
}

// read reads one frame, with a parser of its own (independent of the sink's) that follows
// librelp's: TXNR SP CMD SP DATALEN [SP DATA] LF. Any error ends the script.
func (s *peerSession) read() (peerFrame, error) {
	var f peerFrame
	_ = s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	tx, err := s.br.ReadString(' ')
	if err != nil {
		return f, err
	}
	if f.txnr, err = strconv.Atoi(strings.TrimSuffix(tx, " ")); err != nil {
		return f, err
	}
	cmd, err := s.br.ReadString(' ')
	if err != nil {
		return f, err
	}
	f.cmd = strings.TrimSuffix(cmd, " ")
	n, end := 0, byte(0)
	for {
		b, err := s.br.ReadByte()
		if err != nil {
			return f, err
		}
		if b < '0' || b > '9' {
			end = b
			break
		}
		n = n*10 + int(b-'0')
	}
	data := make([]byte, n+1) // the data and the trailer
	switch {
	case n == 0 && end == '\n':
		data[0] = '\n'
	case n > 0 && end == ' ':
		if _, err := io.ReadFull(s.br, data); err != nil {
			return f, err
		}
	default:
		return f, fmt.Errorf("bad byte %q after DATALEN %d", end, n)
	}
	if data[n] != '\n' {
		return f, fmt.Errorf("frame %d does not end in LF", f.txnr)
	}
	f.data = string(data[:n])
	if f.cmd == "close" {
		// Like imrelp: an empty answer, then serverclose; the session is over.
		s.p.mu.Lock()
		s.p.closes = append(s.p.closes, f.txnr)
		s.p.mu.Unlock()
		s.write(f.txnr, "rsp", "")
		s.write(0, "serverclose", "")
		return f, errSessionClosed
	}
	if f.cmd == "syslog" {
		s.out = append(s.out, f)
		s.p.mu.Lock()
		s.p.maxOut = max(s.p.maxOut, len(s.out))
		s.p.mu.Unlock()
	}
	return f, nil
}

func (s *peerSession) write(txnr int, cmd, data string) {
	frame := strconv.Itoa(txnr) + " " + cmd + " " + strconv.Itoa(len(data))
	if data != "" {
		frame += " " + data
	}
	_, _ = s.c.Write([]byte(frame + "\n"))
}

// open reads the open command and answers it (200 and the offers imrelp sends, unless
// answer is given). It reports whether the session is open.
func (s *peerSession) open(answer ...string) bool {
	f, err := s.read()
	if err != nil || f.cmd != "open" || f.txnr != 1 {
		return false
	}
	s.p.mu.Lock()
	s.p.opens++
	s.p.mu.Unlock()
	rsp := "200 OK\nrelp_version=0\nrelp_software=test-peer\ncommands=syslog\n"
	if len(answer) > 0 {
		rsp = answer[0]
	}
	s.write(1, "rsp", rsp)
	return strings.HasPrefix(rsp, "200")
}

// ack answers the i-th outstanding syslog command with 200 and records its message.
func (s *peerSession) ack(i int) {
	f := s.out[i]
	s.out = append(s.out[:i], s.out[i+1:]...)
	s.p.mu.Lock()
	s.p.accepted = append(s.p.accepted, f.data)
	s.p.mu.Unlock()
	s.write(f.txnr, "rsp", "200 OK")
}

// nack answers the i-th outstanding syslog command with data (a non-200 status).
func (s *peerSession) nack(i int, data string) {
	f := s.out[i]
	s.out = append(s.out[:i], s.out[i+1:]...)
	s.write(f.txnr, "rsp", data)
}

// serve answers everything like imrelp until the connection ends: 200 per message, an
// empty rsp and serverclose for close.
func (s *peerSession) serve() {
	for {
		f, err := s.read()
		if err != nil {
			return
		}
		if f.cmd == "syslog" {
			s.ack(len(s.out) - 1)
		}
	}
}

// readOut reads until n syslog commands wait for an answer; false when the session ended first.
func (s *peerSession) readOut(n int) bool {
	for len(s.out) < n {
		if _, err := s.read(); err != nil {
			return false
		}
	}
	return true
}

// readUntilQuiet reads commands until none arrives for quiet. It returns an error when the
// session ended (closed by the client, or the connection).
func (s *peerSession) readUntilQuiet(quiet time.Duration) error {
	for {
		_ = s.c.SetReadDeadline(time.Now().Add(quiet))
		if _, err := s.br.Peek(1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		}
		if _, err := s.read(); err != nil {
			return err
		}
	}
}

// hang reads whatever comes and never answers, until the connection ends.
func (s *peerSession) hang() {
	buf := make([]byte, 4096)
	_ = s.c.SetReadDeadline(time.Time{})
	for {
		if _, err := s.c.Read(buf); err != nil {
			return
		}
	}
}
