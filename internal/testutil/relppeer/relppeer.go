// Package relppeer is a RELP receiver for tests that answers each message as a function says:
// "200 OK", or a refusal such as "500 rejected by rule 7". rsyslog's imrelp cannot be told to
// refuse one message, which is what a poison-message test needs. It follows librelp's framing
// (TXNR SP CMD SP DATALEN [SP DATA] LF) with a parser of its own, independent of the sink's.
package relppeer

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
)

// Peer is a listening RELP receiver on 127.0.0.1; it stops when the test ends.
type Peer struct {
	l      net.Listener
	answer func(msg string) string
	wg     sync.WaitGroup

	mu       sync.Mutex
	received []string // every syslog message, refused ones included
	accepted []string
}

// Start listens and serves sessions. answer returns the rsp text for a message ("" or a text
// starting with 200 accepts it); nil accepts everything.
func Start(t testing.TB, answer func(msg string) string) *Peer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{l: l, answer: answer}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				p.session(c)
			}()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); p.wg.Wait() })
	return p
}

// Addr is the host:port to send to.
func (p *Peer) Addr() string { return p.l.Addr().String() }

// Received returns every syslog message received so far, in order, refused ones included.
func (p *Peer) Received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.received...)
}

// Accepted returns the messages answered 200, in order.
func (p *Peer) Accepted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.accepted...)
}

func (p *Peer) session(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		txnr, cmd, data, err := readFrame(br)
		if err != nil {
			return
		}
		var rsp string
		switch cmd {
		case "open":
			rsp = "200 OK\nrelp_version=0\nrelp_software=relppeer\ncommands=syslog"
		case "close":
			_, _ = fmt.Fprintf(c, "%d rsp 0\n0 serverclose 0\n", txnr)
			return
		case "syslog":
			rsp = "200 OK"
			if p.answer != nil {
				if a := p.answer(data); a != "" {
					rsp = a
				}
			}
			p.mu.Lock()
			p.received = append(p.received, data)
			if strings.HasPrefix(rsp, "200") {
				p.accepted = append(p.accepted, data)
			}
			p.mu.Unlock()
		default:
			return
		}
		if _, err := fmt.Fprintf(c, "%d rsp %d %s\n", txnr, len(rsp), rsp); err != nil {
			return
		}
	}
}

func readFrame(br *bufio.Reader) (txnr int, cmd, data string, err error) {
	head, err := br.ReadString(' ')
	if err != nil {
		return 0, "", "", err
	}
	if txnr, err = strconv.Atoi(strings.TrimSpace(head)); err != nil {
		return 0, "", "", err
	}
	if cmd, err = br.ReadString(' '); err != nil {
		return 0, "", "", err
	}
	cmd = strings.TrimSpace(cmd)
	n, end := 0, byte(0)
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, "", "", err
		}
		if b < '0' || b > '9' {
			end = b
			break
		}
		n = n*10 + int(b-'0')
	}
	if n == 0 {
		return txnr, cmd, "", nil
	}
	if end != ' ' {
		return 0, "", "", errors.New("relppeer: bad byte after DATALEN")
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(br, buf); err != nil {
		return 0, "", "", err
	}
	if buf[n] != '\n' {
		return 0, "", "", errors.New("relppeer: frame does not end in LF")
	}
	return txnr, cmd, string(buf[:n]), nil
}
