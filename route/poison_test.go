package route

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/deadletter"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/testutil/relppeer"
	"github.com/dtforward/dtforward/sink"
)

// poisonAnswer refuses every message containing marker, as a receiver with a rule against one
// record would.
func poisonAnswer(marker string) func(string) string {
	return func(msg string) string {
		if strings.Contains(msg, marker) {
			return "500 rejected by rule 7"
		}
		return ""
	}
}

// TestPoisonMessageIsSetAside: a RELP receiver that refuses one alert of 400 for good. The
// refused alert is sent SIEM_POISON_RETRIES times, then written to the dead-letter file with
// its id and the receiver's answer and counted; every other alert arrives exactly once (the
// ones accepted before the refusal are not sent again), and Deliver succeeds so the
// checkpoint can move. Before: Deliver failed forever and each retry re-sent the alerts
// before the refused one.
func TestPoisonMessageIsSetAside(t *testing.T) {
	peer := relppeer.Start(t, poisonAnswer(`"id":"poison-149"`))
	dir := t.TempDir()
	dl := deadletter.New(dir, 0)
	m := metrics.New()
	s := sinkTo("relp", peer.Addr())
	s.Name = "siem"
	d, err := Open(s, Options{Version: "test", Logger: zerolog.Nop(), DeadLetter: dl, Metrics: m, PoisonRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Delivery.opts.RefusalWait = 10 * time.Millisecond
	var alerts []*alert.Alert
	for i := range 400 {
		id := strconv.Itoa(i)
		if i == 149 {
			id = "poison-149"
		}
		alerts = append(alerts, breach(id))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Deliver(ctx, alerts); err != nil {
		t.Fatalf("Deliver: %v", err)
	}

	got := peer.Received()
	seen := map[string]int{}
	for _, line := range got {
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(line[strings.Index(line, "{"):]), &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		seen[v.ID]++
	}
	for _, a := range alerts {
		want := 1
		if a.ID == "poison-149" {
			want = 3
		}
		if seen[a.ID] != want {
			t.Errorf("alert %s sent %d times, want %d", a.ID, seen[a.ID], want)
		}
	}
	if len(got) != 402 {
		t.Errorf("%d messages sent, want 402 (399 once, the refused one 3 times)", len(got))
	}

	raw, err := os.ReadFile(filepath.Join(dir, deadletter.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var rec deadletter.Record
	if err := json.Unmarshal(bytes.TrimSpace(raw), &rec); err != nil {
		t.Fatalf("dead letter %q: %v", raw, err)
	}
	if rec.Sink != "siem" || rec.ID != "poison-149" || rec.Kind != alert.KindBreach || rec.Appliance != "dt" ||
		rec.Reason != deadletter.ReasonRefused || rec.Answer != "500 rejected by rule 7" || !strings.Contains(rec.Line, `"id":"poison-149"`) {
		t.Errorf("dead letter = %+v", rec)
	}
	if n := counterValue(t, m, "dtforward_dead_letters_total"); n != 1 {
		t.Errorf("dtforward_dead_letters_total = %v, want 1", n)
	}
}

// TestPoisonHeldWhenDeadLetterFull: when the dead letter cannot take the refused alert, the
// batch is held (nothing dropped) and the error names the alert, for /readyz.
func TestPoisonHeldWhenDeadLetterFull(t *testing.T) {
	peer := relppeer.Start(t, poisonAnswer(`"id":"bad"`))
	s := sinkTo("relp", peer.Addr())
	d, err := Open(s, Options{Version: "test", Logger: zerolog.Nop(), DeadLetter: deadletter.New(t.TempDir(), 10), PoisonRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Deliver(context.Background(), []*alert.Alert{breach("1"), breach("bad"), breach("3")})
	if err == nil || !strings.Contains(err.Error(), "modelbreach bad of appliance dt") || !strings.Contains(err.Error(), "500 rejected by rule 7") ||
		!strings.Contains(err.Error(), "dead-letter file is full") {
		t.Fatalf("Deliver = %v, want an error naming modelbreach bad, the answer and the full dead letter", err)
	}
}

func counterValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mm := range mf.GetMetric() {
			total += mm.GetCounter().GetValue()
		}
	}
	return total
}

// bigLines renders an alert whose ID is "big" as a line no UDP datagram can carry, and one
// whose Raw is not a JSON object as an error, like a format that cannot render it.
type bigLines struct{}

func (bigLines) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	switch {
	case a.ID == "big":
		return append(dst, strings.Repeat("x", 70000)...), nil
	case len(a.Raw) > 0 && a.Raw[0] != '{':
		return dst, fmt.Errorf("record is not a JSON object")
	}
	return append(dst, `{"id":"`+a.ID+`"}`...), nil
}

// TestUnsendableAlertsAreSetAside: an alert the format cannot render and one larger than a UDP
// datagram go to the dead letter (the raw record for the first, the line for the second) and
// are counted; their neighbours arrive. Before: both were "skipped" with a log line only.
func TestUnsendableAlertsAreSetAside(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := sinkTo("udp", pc.LocalAddr().String())
	sk, err := NewSink(s, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	dir := t.TempDir()
	var reasons []string
	d := NewDelivery(bigLines{}, sk, zerolog.Nop(), DeliveryOptions{Sink: "siem", DeadLetter: deadletter.New(dir, 0),
		Counted: func(r string) { reasons = append(reasons, r) }})
	bad := breach("bad")
	bad.Raw = []byte(`[1,2]`)
	if err := d.Deliver(context.Background(), []*alert.Alert{breach("1"), bad, breach("big"), breach("4")}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	buf := make([]byte, 70000)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < 2 {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		line := string(buf[:n])
		got[line[strings.Index(line, "{"):]] = true
	}
	if !got[`{"id":"1"}`] || !got[`{"id":"4"}`] {
		t.Errorf("received %v, want alerts 1 and 4", got)
	}
	raw, err := os.ReadFile(filepath.Join(dir, deadletter.FileName))
	if err != nil {
		t.Fatal(err)
	}
	recs := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(recs) != 2 {
		t.Fatalf("dead letter:\n%s", raw)
	}
	var r1, r2 deadletter.Record
	_ = json.Unmarshal([]byte(recs[0]), &r1)
	_ = json.Unmarshal([]byte(recs[1]), &r2)
	if r1.ID != "bad" || r1.Reason != deadletter.ReasonUnformattable || string(r1.Record) != `[1,2]` || r1.Answer != "record is not a JSON object" {
		t.Errorf("first dead letter = %+v", r1)
	}
	if r2.ID != "big" || r2.Reason != deadletter.ReasonTooLarge || len(r2.Line) != 70000 {
		t.Errorf("second dead letter = %+v (line %d bytes)", r2, len(r2.Line))
	}
	if strings.Join(reasons, ",") != "unformattable,too_large" {
		t.Errorf("counted %v", reasons)
	}
}

// refusingSink accepts every message but those containing poison, and reports the first
// refused one as a RELP sink does once its window is answered: with Next past the messages it
// accepted after it.
type refusingSink struct {
	gateSink
	poison string
	sent   map[string]int // every line handed to Send, refused ones included
}

func (s *refusingSink) Send(ctx context.Context, msgs []sink.Message) error {
	refused := -1
	var ok []sink.Message
	s.mu.Lock()
	for i, m := range msgs {
		s.sent[string(m.Line)]++
		if strings.Contains(string(m.Line), s.poison) {
			if refused < 0 {
				refused = i
			}
			continue
		}
		ok = append(ok, m)
	}
	s.mu.Unlock()
	if err := s.gateSink.Send(ctx, ok); err != nil {
		return err
	}
	if refused >= 0 {
		return &sink.RejectedError{Index: refused, Next: len(msgs), Reason: "500 no"}
	}
	return nil
}

// TestRefusalInAGroupedWrite: slices of three appliances go out in one write and the receiver
// refuses one line of the middle one. The slices before it are done, the refused line is sent
// again alone (with nothing the receiver accepted), then set aside; every other line is
// accepted exactly once.
func TestRefusalInAGroupedWrite(t *testing.T) {
	s := &refusingSink{gateSink: gateSink{hold: `"appliance":"dt-a"`, gate: make(chan struct{}), blocked: make(chan struct{})},
		poison: `"id":"5","appliance":"dt-b"`, sent: map[string]int{}}
	dir := t.TempDir()
	d := NewDelivery(jsonFormatter(t), s, zerolog.Nop(), DeliveryOptions{Sink: "siem", DeadLetter: deadletter.New(dir, 0),
		PoisonRetries: 2, RefusalWait: time.Millisecond})
	ctx := context.Background()
	errs := make(chan error, 4)
	go func() { errs <- d.Deliver(ctx, alertsOf("dt-a", 3)) }()
	<-s.blocked
	for i, app := range []string{"dt-x", "dt-b", "dt-c"} {
		go func() { errs <- d.Deliver(ctx, alertsOf(app, 20)) }()
		waitUntil(t, "the slice to queue", func() bool { return d.Queued() == i+1 })
	}
	close(s.gate)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for line, n := range s.sent {
		want := 1
		if strings.Contains(line, s.poison) {
			want = 2
		}
		if n != want {
			t.Errorf("sent %d times, want %d: %s", n, want, line)
		}
	}
	if len(s.sent) != 63 || len(s.lines) != 62 {
		t.Errorf("%d distinct lines sent, %d accepted; want 63 and 62", len(s.sent), len(s.lines))
	}
	raw, err := os.ReadFile(filepath.Join(dir, deadletter.FileName))
	if err != nil || !strings.Contains(string(raw), `"id":"5","reason":"refused","answer":"500 no"`) || !strings.Contains(string(raw), `"appliance":"dt-b"`) {
		t.Errorf("dead letter %s (%v)", raw, err)
	}
}
