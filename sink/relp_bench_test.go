package sink_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/sink"
)

// lineCounter counts the lines a receiver has written so far, reading only what is new.
type lineCounter struct {
	f   *os.File
	n   int
	buf []byte
}

func (c *lineCounter) count(b *testing.B) int {
	for {
		n, err := c.f.Read(c.buf)
		c.n += bytes.Count(c.buf[:n], []byte{'\n'})
		if err == io.EOF || n == 0 {
			return c.n
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// waitLines waits until the receiver has written want lines.
func (c *lineCounter) waitLines(b *testing.B, want int) {
	deadline := time.Now().Add(time.Minute)
	for c.count(b) < want {
		if time.Now().After(deadline) {
			b.Fatalf("receiver wrote %d of %d lines", c.n, want)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// BenchmarkRELPVsTCPToRsyslog compares RELP (window 128) with the TCP sink (RFC 5424, LF
// framing) into the same real rsyslog (imrelp and imtcp, default in-memory queue, omfile),
// in the same run: batches of 100 realistic CEF lines, alternating rounds of 20 batches per
// transport so that both see the same machine load. A round ends when rsyslog has written
// every message of it to its file, so both are timed end to end (for TCP, Send returns when
// the kernel has the bytes; for RELP, when rsyslog has acknowledged every message).
// ratio = RELP msgs/s ÷ TCP msgs/s.
//
//	go test ./sink -run '^$' -bench RELPVsTCPToRsyslog -benchtime 400x
func BenchmarkRELPVsTCPToRsyslog(b *testing.B) {
	r := syslogd.StartRsyslog(b, syslogd.Options{TCP: true, RELP: true})
	out, err := os.Open(r.OutputFile())
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	lc := &lineCounter{f: out, buf: make([]byte, 1<<20)}
	newBenchSink := func(cfg sink.Config) sink.Sink {
		cfg.Hostname = testHost
		s, err := sink.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	tcp := newBenchSink(sink.Config{Transport: "tcp", Address: r.TCP})
	relp := newBenchSink(sink.Config{Transport: "relp", Address: r.RELP})
	msgs := benchLines(benchBatch)
	ctx := context.Background()
	total := 0
	for _, s := range []sink.Sink{tcp, relp} { // connect outside the timer
		if err := s.Send(ctx, msgs[:1]); err != nil {
			b.Fatal(err)
		}
		total++
	}
	lc.waitLines(b, total)

	const round = 20 // batches
	var tcpDur, relpDur time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		for _, run := range []struct {
			s   sink.Sink
			dur *time.Duration
		}{{tcp, &tcpDur}, {relp, &relpDur}} {
			start := time.Now()
			for i := 0; i < n; i++ {
				if err := run.s.Send(ctx, msgs); err != nil {
					b.Fatal(err)
				}
			}
			total += n * len(msgs)
			lc.waitLines(b, total)
			*run.dur += time.Since(start)
		}
	}
	b.StopTimer()
	sent := float64(b.N * len(msgs))
	b.ReportMetric(sent/tcpDur.Seconds(), "tcp_msgs/s")
	b.ReportMetric(sent/relpDur.Seconds(), "relp_msgs/s")
	b.ReportMetric(tcpDur.Seconds()/relpDur.Seconds(), "ratio")
}
