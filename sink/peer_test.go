package sink_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/sink"
)

// peerServer accepts connections and hands each to handle, collecting what it returns.
type peerServer struct {
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns [][]byte // bytes received, per connection
}

func newPeerServer(t *testing.T, tlsCfg *tls.Config, handle func(n int, c net.Conn) []byte) *peerServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		l = tls.NewListener(l, tlsCfg)
	}
	p := &peerServer{l: l}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func(n int) {
				defer p.wg.Done()
				data := handle(n, c)
				c.Close() // before the connection is counted: a counted connection is closed
				p.mu.Lock()
				p.conns = append(p.conns, data)
				p.mu.Unlock()
			}(n)
		}
	}()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

// waitConns waits up to 10 s until n connections have ended.
func (p *peerServer) waitConns(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		done := len(p.conns)
		p.mu.Unlock()
		if done >= n {
			return
		}
	}
}

// readUntil reads from c until want bytes arrived or 5 s passed.
func readUntil(c net.Conn, want int) []byte {
	var data []byte
	buf := make([]byte, 64<<10)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(data) < want {
		n, err := c.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			break
		}
	}
	return data
}

// readThenClose is a collector that reads the first batch and closes the connection a while
// later, like one restarted between batches. The pause is longer than the sink watches a new
// connection after its first batch (200 ms): a close within that time counts as a dropped
// connection (TestPeerAcceptsAndDrops).
func readThenClose(_ int, c net.Conn) []byte {
	data := readUntil(c, len("first\n"))
	time.Sleep(300 * time.Millisecond)
	return data
}

// TestPeerState: before each batch the sink looks at the connection. A peer that closed it is
// noticed (reconnect, nothing lost); a peer that merely sent something (TLS 1.3 session
// tickets, stray bytes) does not cost a reconnect.
func TestPeerState(t *testing.T) {
	ca := syslogd.NewCA(t)
	cert, err := tls.LoadX509KeyPair(ca.ServerCert, ca.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	one := []sink.Message{{Kind: "modelbreach", Line: []byte("first")}}
	two := []sink.Message{{Kind: "modelbreach", Line: []byte("second")}}
	const both = len("first\n") + len("second\n")
	tests := []struct {
		name           string
		tls            bool
		handle         func(n int, c net.Conn) []byte
		wantConns      []string
		wantReconnects int
	}{
		{"closed after first batch", false, readThenClose, []string{"first\n", "second\n"}, 1},
		{"stray bytes from the receiver", false, func(_ int, c net.Conn) []byte {
			_, _ = c.Write([]byte("hello from the collector\n"))
			return readUntil(c, both)
		}, []string{"first\nsecond\n"}, 0},
		{"tls 1.3 session tickets", true, func(_ int, c net.Conn) []byte {
			// Go's TLS 1.3 server sends session tickets right after the handshake.
			return readUntil(c, both)
		}, []string{"first\nsecond\n"}, 0},
		{"tls closed after first batch", true, readThenClose, []string{"first\n", "second\n"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg *tls.Config
			transport := "tcp"
			if tc.tls {
				cfg, transport = srvTLS, "tls"
			}
			p := newPeerServer(t, cfg, tc.handle)
			var c counters
			s := newSink(t, sink.Config{Transport: transport, Address: p.l.Addr().String(), Header: sink.HeaderNone,
				Framing: sink.FramingLF, TLS: tlsFor(transport, ca.CAFile), Hooks: c.hooks()})
			ctx := context.Background()
			if err := s.Send(ctx, one); err != nil {
				t.Fatal(err)
			}
			if tc.wantReconnects > 0 {
				// The second batch must meet a closed connection: wait for the close itself
				// (a fixed pause lost the race on a loaded machine).
				p.waitConns(t, 1)
			} else {
				time.Sleep(500 * time.Millisecond) // let the peer send its stray bytes
			}
			if err := s.Send(ctx, two); err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			p.waitConns(t, len(tc.wantConns))
			p.mu.Lock()
			got := p.conns
			p.mu.Unlock()
			if len(got) != len(tc.wantConns) {
				t.Fatalf("connections: got %q, want %q", got, tc.wantConns)
			}
			// Connections may finish in any order.
			gotS := make([]string, len(got))
			for i := range got {
				gotS[i] = string(got[i])
			}
			slices.Sort(gotS)
			want := slices.Clone(tc.wantConns)
			slices.Sort(want)
			if !slices.Equal(gotS, want) {
				t.Errorf("connections got %q, want %q", gotS, want)
			}
			if c.reconnects != tc.wantReconnects {
				t.Errorf("reconnects = %d, want %d", c.reconnects, tc.wantReconnects)
			}
		})
	}
}

// TestUDPReceiverGone: UDP cannot know about a datagram lost to a closed port, but the ICMP
// error makes a later Send fail, so the caller resends and /readyz can turn red.
func TestUDPReceiverGone(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	s := newSink(t, sink.Config{Transport: "udp", Address: addr})
	var errs int
	for i := 0; i < 5; i++ {
		if err := s.Send(context.Background(), batch(i, 1)); err != nil {
			errs++
			t.Logf("Send %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if errs == 0 {
		t.Error("no Send failed although nobody listens")
	}
}
