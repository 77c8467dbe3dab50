package syslogd_test

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
)

// relpClient speaks just enough RELP by hand to check the harness's imrelp listener.
type relpClient struct {
	c  net.Conn
	br *bufio.Reader
	tx int
}

func dialRELP(t *testing.T, addr string) *relpClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &relpClient{c: c, br: bufio.NewReader(c), tx: 1}
	if got := r.command(t, "open", "relp_version=0\nrelp_software=harness-test\ncommands=syslog", time.Now().Add(5*time.Second)); !strings.HasPrefix(got, "1 rsp ") || !strings.Contains(got, "200 OK\n") || !strings.Contains(got, "commands=syslog") {
		t.Fatalf("answer to open: %q", got)
	}
	return r
}

// command sends one command and returns the answer frame ("" when none came by deadline).
func (r *relpClient) command(t *testing.T, cmd, data string, deadline time.Time) string {
	t.Helper()
	frame := strconv.Itoa(r.tx) + " " + cmd + " " + strconv.Itoa(len(data))
	if data != "" {
		frame += " " + data
	}
	r.tx++
	if _, err := r.c.Write([]byte(frame + "\n")); err != nil {
		t.Fatal(err)
	}
	return r.answer(deadline)
}

// answer reads one answer frame: "TXNR rsp LEN DATA" up to its trailer.
func (r *relpClient) answer(deadline time.Time) string {
	_ = r.c.SetReadDeadline(deadline)
	head, err := r.br.ReadString(' ')
	if err != nil {
		return ""
	}
	cmd, _ := r.br.ReadString(' ')
	var lenStr []byte
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return ""
		}
		lenStr = append(lenStr, b)
		if b == ' ' || b == '\n' {
			break
		}
	}
	if lenStr[len(lenStr)-1] == '\n' { // DATALEN 0: no data
		return head + cmd + string(lenStr)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(lenStr)))
	data := make([]byte, n+1)
	for i := range data {
		if data[i], err = r.br.ReadByte(); err != nil {
			return ""
		}
	}
	return head + cmd + string(lenStr) + string(data)
}

// TestRsyslogRELP drives the imrelp listener by hand: the session opens, each message is
// answered 200 and recorded exactly as sent; a paused daemon answers nothing until resumed;
// with SyncWrites a message is in the output file by the time its answer arrives.
func TestRsyslogRELP(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{RELP: true, SyncWrites: true})
	c := dialRELP(t, r.RELP)
	msg := func(i int) string {
		return "<134>1 2026-01-02T03:04:05.000006Z host app - id - relp\ttab " + strconv.Itoa(i)
	}
	for i := 0; i < 20; i++ {
		got := c.command(t, "syslog", msg(i), time.Now().Add(5*time.Second))
		if want := strconv.Itoa(i+2) + " rsp 6 200 OK\n"; got != want {
			t.Fatalf("answer %d = %q, want %q", i, got, want)
		}
		if n := r.Count(t); n != i+1 {
			t.Fatalf("after the answer to message %d the output holds %d messages, want %d (SyncWrites)", i, n, i+1)
		}
	}
	got := r.Messages(t)
	for i, m := range got {
		if m.Input != "relp" || string(m.Raw) != msg(i) {
			t.Errorf("message %d = %s %q, want relp %q", i, m.Input, m.Raw, msg(i))
		}
	}

	r.Pause(t)
	if got := c.command(t, "syslog", msg(20), time.Now().Add(300*time.Millisecond)); got != "" {
		t.Fatalf("a paused rsyslog answered %q", got)
	}
	r.Resume(t)
	if got := c.answer(time.Now().Add(5 * time.Second)); got != "22 rsp 6 200 OK\n" {
		t.Fatalf("after Resume: %q", got)
	}
	if got := c.command(t, "close", "", time.Now().Add(5*time.Second)); got != "23 rsp 0\n" {
		t.Fatalf("answer to close: %q", got)
	}
}
