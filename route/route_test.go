package route

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/internal/testutil/syslogd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sinkTo(transport, address string) config.Sink {
	return config.Sink{Format: "json", LEEFVersion: "2.0", Transport: transport, Address: address, Facility: "local4",
		RELPWindow: 16, MaxMessageBytes: 8192, Timeout: 2 * time.Second}
}

func breach(id string) *alert.Alert {
	return &alert.Alert{Kind: alert.KindBreach, ID: id, Appliance: "dt", Severity: 5, Raw: []byte(`{}`)}
}

// A destination formats with its own format and sends with its own header and APP-NAME: two
// destinations to one real rsyslog, told apart by the APP-NAME (RFC 5424) and TAG (RFC 3164)
// that SC4S and Elastic route on.
func TestDestinationAppName(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{TCP: true})
	a := sinkTo("tcp", r.TCP)
	a.Name, a.AppName = "elastic", "dt-elastic"
	b := sinkTo("tcp", r.TCP)
	b.Name, b.Format, b.Header = "legacy", "darktrace-json", "rfc3164"
	for _, s := range []config.Sink{a, b} {
		d, err := Open(s, Options{Version: "test", Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Deliver(context.Background(), []*alert.Alert{breach("1")}); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	msgs := r.Wait(t, 2, 10*time.Second)
	if raw := string(msgs[0].Raw); !strings.HasPrefix(raw, "<164>1 ") || !strings.Contains(raw, " dt-elastic ") || !strings.Contains(raw, ` modelbreach - {"schemaVersion":2`) {
		t.Errorf("rfc5424 message without APP-NAME dt-elastic: %q", raw)
	}
	// darktrace-json defaults its APP-NAME to "darktrace", as Darktrace's own Syslog JSON does.
	if raw := string(msgs[1].Raw); !strings.HasPrefix(raw, "<164>") || !strings.Contains(raw, " darktrace[") || !strings.HasSuffix(raw, "]: {}") {
		t.Errorf("rfc3164 message without TAG darktrace: %q", raw)
	}
}

func TestDestinationSources(t *testing.T) {
	polled := []string{"modelbreaches", "antigena", "aianalyst"}
	all := Destination{Config: config.Sink{}}
	if got := all.Sources(polled); strings.Join(got, ",") != "modelbreaches,antigena,aianalyst" {
		t.Errorf("no sources: %v, want every polled source", got)
	}
	ai := Destination{Config: config.Sink{Sources: []string{"aianalyst", "modelbreaches"}}}
	if got := ai.Sources(polled); strings.Join(got, ",") != "modelbreaches,aianalyst" {
		t.Errorf("listed sources: %v, want them in POLL_SOURCES order", got)
	}
}

func TestOpenRejectsUnknownFormat(t *testing.T) {
	s := sinkTo("stdout", "")
	s.Format = "xml"
	_, err := Open(s, Options{Logger: zerolog.Nop()})
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("Open with format xml = %v, want a *FormatError", err)
	}
}
