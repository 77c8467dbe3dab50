package sink_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
)

// discardReader is a local receiver that reads and counts bytes as fast as it can.
type discardReader struct {
	l     net.Listener
	n     atomic.Int64 // bytes read
	sent  atomic.Int64 // bytes the benchmark wrote so far, for waitFor
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newDiscardReader(b *testing.B, tlsCfg *tls.Config) *discardReader {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if tlsCfg != nil {
		l = tls.NewListener(l, tlsCfg)
	}
	r := &discardReader{l: l}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					r.n.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		l.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

// waitFor waits until the reader has consumed total bytes.
func (r *discardReader) waitFor(b *testing.B, total int64) {
	deadline := time.Now().Add(time.Minute)
	for r.n.Load() < total {
		if time.Now().After(deadline) {
			b.Fatalf("reader got %d of %d bytes", r.n.Load(), total)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// benchLines is a batch of realistic CEF lines (~450 bytes each).
func benchLines(n int) []sink.Message {
	msgs := make([]sink.Message, n)
	for i := range msgs {
		msgs[i] = sink.Message{Severity: i % 11, Kind: kinds[i%3], Line: []byte(fmt.Sprintf(
			`CEF:0|Darktrace|DCIP|6.2.3|%d|Device / Anomalous Connection / Data Sent to Rare Domain|7|rt=1700000000000 start=1699999990000 externalId=%d cat=Suspicious src=10.0.0.%d shost=workstation-%d.corp.example smac=00:0c:29:aa:bb:cc dst=203.0.113.7 dhost=rare.example dpt=443 proto=TCP cs1Label=modelUuid cs1=0f2b7c9e-1d2a-4c5b-9e8f-123456789abc cs4Label=appliance cs4=dt-1 cn1Label=modelPid cn1=%d cfp1Label=score cfp1=0.73 darktraceUrl=https://dt-1/#modelbreach/%d`,
			100+i%50, i, i%250, i, 100+i%50, i))}
	}
	return msgs
}

const benchBatch = 100

// sendBatches sends b.N batches.
func sendBatches(b *testing.B, s sink.Sink, msgs []sink.Message) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := s.Send(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTCPSinkVsRawConn compares the TCP sink (srslog underneath, RFC 5424, LF framing)
// with a plain net.Conn write loop of the same framed bytes, one Write per message, into the
// same local reader, measured in the same run. ratio = sink throughput / raw throughput;
// the bar is ≥ 0.5.
func BenchmarkTCPSinkVsRawConn(b *testing.B) {
	r := newDiscardReader(b, nil)
	msgs := benchLines(benchBatch)
	var sentBytes atomic.Int64
	s, err := sink.New(sink.Config{Transport: "tcp", Address: r.l.Addr().String(), Hostname: testHost,
		Hooks: sink.Hooks{Sent: func(_, n int) { sentBytes.Add(int64(n)) }}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Capture the exact framed bytes of one batch for the raw loop.
	frames := framedBytes(b, msgs)
	conn, err := net.Dial("tcp", r.l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()

	// Alternate short rounds of sink and raw writes so that both see the same machine load
	// (the CPU is shared); each round ends when the reader has consumed everything.
	const round = 20 // batches
	var sinkDur, rawDur time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := s.Send(ctx, msgs); err != nil {
				b.Fatal(err)
			}
		}
		r.waitFor(b, r.sent.Add(sentBytes.Swap(0)))
		sinkDur += time.Since(start)

		start = time.Now()
		var raw int64
		for i := 0; i < n; i++ {
			for _, f := range frames {
				w, err := conn.Write(f)
				if err != nil {
					b.Fatal(err)
				}
				raw += int64(w)
			}
		}
		r.waitFor(b, r.sent.Add(raw))
		rawDur += time.Since(start)
	}
	b.StopTimer()
	total := float64(b.N * len(msgs))
	b.ReportMetric(total/sinkDur.Seconds(), "sink_msgs/s")
	b.ReportMetric(total/rawDur.Seconds(), "raw_msgs/s")
	b.ReportMetric(rawDur.Seconds()/sinkDur.Seconds(), "ratio")
}

// framedBytes returns the frames the TCP sink writes for msgs, as captured on a real socket.
func framedBytes(b *testing.B, msgs []sink.Message) [][]byte {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan []byte)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- nil
			return
		}
		data, _ := io.ReadAll(c)
		c.Close()
		done <- data
	}()
	s, err := sink.New(sink.Config{Transport: "tcp", Address: l.Addr().String(), Hostname: testHost})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Send(context.Background(), msgs); err != nil {
		b.Fatal(err)
	}
	s.Close()
	data := <-done
	var frames [][]byte
	for len(data) > 0 {
		i := 0
		for data[i] != '\n' {
			i++
		}
		frames = append(frames, data[:i+1])
		data = data[i+1:]
	}
	if len(frames) != len(msgs) {
		b.Fatalf("captured %d frames for %d messages", len(frames), len(msgs))
	}
	return frames
}

// BenchmarkSinkThroughput reports messages/s into a local reader over TCP and TLS (batches
// of 100 realistic CEF lines, RFC 5424; TLS with octet counting).
func BenchmarkSinkThroughput(b *testing.B) {
	for _, transport := range []string{"tcp", "tls"} {
		b.Run(transport, func(b *testing.B) {
			var tlsSrv *tls.Config
			var opts tlsconfig.Options
			if transport == "tls" {
				ca := syslogd.NewCA(b)
				cert, err := tls.LoadX509KeyPair(ca.ServerCert, ca.ServerKey)
				if err != nil {
					b.Fatal(err)
				}
				tlsSrv = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
				opts.CAFile = ca.CAFile
			}
			r := newDiscardReader(b, tlsSrv)
			var sentBytes atomic.Int64
			s, err := sink.New(sink.Config{Transport: transport, Address: r.l.Addr().String(), Hostname: testHost, TLS: opts,
				Hooks: sink.Hooks{Sent: func(_, n int) { sentBytes.Add(int64(n)) }}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			msgs := benchLines(benchBatch)
			if err := s.Send(context.Background(), msgs[:1]); err != nil { // connect outside the timer
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			sendBatches(b, s, msgs)
			r.waitFor(b, sentBytes.Load()) // the reader counts plaintext, so this is exact for TLS too
			d := time.Since(start)
			b.ReportMetric(float64(b.N*len(msgs))/d.Seconds(), "msgs/s")
			b.SetBytes(sentBytes.Load() / int64(b.N))
		})
	}
}
