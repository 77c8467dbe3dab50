package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/poller"
	"github.com/dtforward/dtforward/route"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/sentinel/row"
	"github.com/dtforward/dtforward/source"
)

// skewWarning is the clock difference "check" warns about. The appliance rejects requests
// beyond ±30 minutes; well before that, a clock that runs behind ours by more than POLL_OVERLAP
// risks windows that end in the appliance's future.
const skewWarning = poller.SkewWarning

// runCheck is "dtforward check": validate the configuration, reach every appliance (/status
// and each configured source), reach the sink, and print one sample line in the configured
// format. Exit 0 when everything works, 1 when something is unreachable, 2 for configuration
// errors.
func runCheck(ctx context.Context, e *env) int {
	fs := newFlags(e, "check", func(w io.Writer) {
		fmt.Fprint(w, `Usage: dtforward check [--timeout 30s]

Validates the configuration (same environment as run), then calls the appliance's /status
(warning on clock skew over 5 minutes, failing over 30), fetches each configured source once,
reaches the sink and prints one sample line in the configured format, made from a built-in
example breach. Nothing is forwarded, no checkpoint is written and nothing is retried: each
step is tried once. Exit 0 when every step passed, 1 when one failed, 2 on a configuration
error.
`)
	})
	timeout := fs.Duration("timeout", 30*time.Second, "give up on each network step after this long")
	if code, ok := fs.parseNoArgs(" (check takes no arguments; it reads the same environment as run)"); !ok {
		return code
	}
	cfg, err := loadConfig(config.ModeCheck, e)
	if err != nil {
		return printConfigError(e.stderr, "check", err)
	}
	apps, err := cfg.ShardAppliances()
	if err != nil {
		return printConfigError(e.stderr, "check", err)
	}
	// Everything run builds from the configuration is built before anything is called ok, with
	// run's own code (newClient, cfg.Sinks, route.NewFormatter): a configuration error is exit
	// 2 with nothing reported as working.
	clients := make([]*darktrace.Client, len(apps))
	for i, app := range apps {
		if clients[i], err = newClient(app, cfg, nil, nil, nil); err != nil {
			return printConfigError(e.stderr, "check", fmt.Errorf("appliance %s: %w", app.Name, err))
		}
	}
	sinks, err := cfg.Sinks()
	if err != nil {
		return printConfigError(e.stderr, "check", err)
	}
	for _, sk := range sinks {
		if _, err := route.NewFormatter(sk, version); err != nil {
			return printConfigError(e.stderr, "check", fmt.Errorf("sink %s: %w", sk.Label(), err))
		}
	}
	out := e.stdout
	fmt.Fprintln(out, "configuration: ok")
	failed := false
	fail := func(format string, args ...any) {
		failed = true
		fmt.Fprintf(out, "FAIL "+format+"\n", args...)
	}

	for i, app := range apps {
		c := clients[i]
		sctx, cancel := context.WithTimeout(ctx, *timeout)
		st, err := c.Status(sctx)
		cancel()
		if err != nil {
			fail("appliance %s (%s): %v%s", app.Name, app.URL, err, transient(err))
			c.CloseIdleConnections()
			continue
		}
		fmt.Fprintf(out, "appliance %s (%s): reachable, version %q, hostname %q\n", app.Name, app.URL, st.Version, st.Hostname)
		if at, err := st.ApplianceTime(); err == nil {
			skew := at.Sub(time.Now().Truncate(time.Second)) // /status has whole seconds
			switch {
			case skew.Abs() > 30*time.Minute:
				fail("appliance %s: clock skew %s: appliance time is %s; it rejects requests more than 30m off, fix NTP", app.Name, skew.Round(time.Second), at.Format(time.RFC3339))
			case skew.Abs() > skewWarning:
				fmt.Fprintf(out, "WARN appliance %s: clock skew %s (appliance time %s); keep it under POLL_OVERLAP (%s) and fix NTP\n",
					app.Name, skew.Round(time.Second), at.Format(time.RFC3339), cfg.PollOverlap)
			default:
				fmt.Fprintf(out, "appliance %s: clock skew %s: ok\n", app.Name, skew.Round(time.Second))
			}
		}
		// Each source once, over an empty window: proves the token may read it.
		p := source.NewReader(c, app.Name, c.Host(), source.Filter{IncludeAcknowledged: true}, newLogger(cfg, e.stderr))
		for _, name := range cfg.PollSources {
			src, err := p.Source(name)
			if err != nil {
				return printConfigError(e.stderr, "check", err)
			}
			now := time.Now()
			sctx, cancel := context.WithTimeout(ctx, *timeout)
			_, st, err := src.FetchWindow(sctx, now.Add(-time.Minute), now)
			cancel()
			if err != nil {
				fail("appliance %s: %s: %v%s", app.Name, name, err, transient(err))
				continue
			}
			if src.Windowed() {
				fmt.Fprintf(out, "appliance %s: %s: ok (%d records in the last minute)\n", app.Name, name, st.Fetched)
			} else {
				// /antigena has no time window: it lists every current action.
				fmt.Fprintf(out, "appliance %s: %s: ok (%d current records)\n", app.Name, name, st.Fetched)
			}
		}
		c.CloseIdleConnections()
	}

	for _, sk := range sinks {
		sinkName := strings.TrimSpace(sk.Transport + " " + sk.Address)
		if sk.Name != "" {
			sinkName = sk.Name + " (" + sinkName + ")"
		}
		if verified, err := reachSink(ctx, sk, *timeout); err != nil {
			fail("sink %s: %s", sinkName, withoutSinkPrefix(err, sk))
		} else {
			fmt.Fprintf(out, "sink %s: %s\n", sinkName, verified)
		}

		what, line, err := sampleLine(cfg, sk)
		if err != nil {
			fail("%s: %v", what, err)
		} else {
			fmt.Fprintf(out, "%s (a built-in example breach, not appliance data):\n%s\n", what, line)
		}
	}
	if failed {
		return exitFailure
	}
	return exitOK
}

// transient notes that run would retry a failure that check, trying each step once, reports.
func transient(err error) string {
	if darktrace.ClassOf(err) == darktrace.ClassRetry {
		return " (temporary: run keeps retrying this; check tries once)"
	}
	return ""
}

// reachSink tries the SIEM side without sending a message and says what it verified: a TCP
// connect, a TLS handshake with the configured trust, a RELP session, the file opened for
// appending, or for UDP only the absence of a refusal.
func reachSink(ctx context.Context, s config.Sink, timeout time.Duration) (verified string, err error) {
	d := net.Dialer{Timeout: timeout}
	switch s.Transport {
	case "stdout":
		return "reachable", nil
	case "file":
		f, err := os.OpenFile(s.Address, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640) //nolint:gosec // same mode as the file sink: a log shipper in the group reads it
		if err != nil {
			return "", err
		}
		return "reachable", f.Close()
	case "udp":
		return probeUDP(ctx, s.Address, min(timeout, udpProbeWait))
	case "tcp":
		conn, err := d.DialContext(ctx, "tcp", s.Address)
		if err != nil {
			return "", err
		}
		return "reachable (TCP connection accepted)", conn.Close()
	case "tls", "relp":
		// The sink's own connect, sending an empty batch: for tls its handshake explains a
		// failure (no TLS on the port, an untrusted or misnamed certificate); for relp it opens
		// (and closes) a session, which proves the receiver speaks RELP and takes syslog.
		sc := s.SinkConfig()
		sc.Timeout = timeout
		ss, err := sink.New(sc)
		if err != nil {
			return "", err
		}
		err = ss.Send(ctx, nil)
		_ = ss.Close()
		if s.Transport == "relp" {
			return "reachable (RELP session opened)", err
		}
		return "reachable (TLS handshake verified)", err
	}
	// An HTTP sink verifies its collector itself (health, token) without sending an event.
	sk, err := route.NewSink(s, route.Options{Version: version})
	if err != nil {
		return "", err
	}
	defer sk.Close()
	if c, ok := sk.(sink.Checker); ok {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := c.Check(cctx); err != nil {
			return "", err
		}
		if s.Transport == "otlp" {
			// What an empty export proves, and what it cannot: the pipeline behind the receiver.
			return "reachable (an empty OTLP export accepted: address, TLS, protocol, logs endpoint and headers verified; not the collector's exporters)", nil
		}
		return "reachable (collector health and token verified)", nil
	}
	return "", fmt.Errorf("unknown transport %q", s.Transport)
}

// withoutSinkPrefix drops the "sink: <transport> <address>: " a sink puts before its errors,
// for a line that names the sink already.
func withoutSinkPrefix(err error, s config.Sink) string {
	msg := strings.TrimPrefix(err.Error(), "sink: ")
	return strings.TrimPrefix(msg, s.Transport+" "+s.Address+": ")
}

// udpProbeWait is how long check waits for an ICMP refusal: one round trip to a collector,
// with room for a loaded host.
const udpProbeWait = time.Second

// probeUDP sends one empty datagram on a connected socket and waits for an ICMP
// port-unreachable, which the kernel reports on the next read as "connection refused". An
// empty datagram carries no message, so a collector has nothing to log. Silence proves
// nothing: UDP has no handshake, and a firewall may drop both the datagram and the ICMP.
func probeUDP(ctx context.Context, addr string, wait time.Duration) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.Write(nil); err != nil {
		return "", udpRefused(err, addr)
	}
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	var buf [1]byte
	_, err = conn.Read(buf[:])
	var ne net.Error
	switch {
	case err == nil, errors.As(err, &ne) && ne.Timeout():
		return "no ICMP refusal seen; UDP cannot confirm a listener (send a test message and look for it in the SIEM)", nil
	}
	return "", udpRefused(err, addr)
}

// udpRefused says what a refusal means for the operator.
func udpRefused(err error, addr string) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("refused: %s answered with ICMP port unreachable, nothing listens on that UDP port (check SIEM_ADDRESS and the collector's UDP input)", addr)
	}
	return err
}

// sampleBreach is a typical model breach as the API returns it, for the sample line.
const sampleBreach = `{"pbid":95,"time":1597688304000,"creationTime":1597688310000,"commentCount":0,"acknowledged":false,"score":0.674,` +
	`"breachUrl":"https://dt.example.com/#modelbreach/95","model":{"name":"Anomalous Connection::Data Sent to Rare Domain","pid":762,` +
	`"phid":1450,"uuid":"80b0ff4c-5e85-4fdb-8d4d-9c2b1e5f3b2a","tags":["AP: Egress"],"priority":4,"category":"Suspicious",` +
	`"description":"A device has sent data to a rare external endpoint.\n\nAction: review the connection.","mitre":{"techniques":["T1041"]}},` +
	`"device":{"did":7,"ip":"10.0.0.7","sid":1,"hostname":"ws-7","macaddress":"aa:bb:cc:dd:ee:07","typelabel":"Desktop"},` +
	`"triggeredComponents":[{"time":1597688304000,"triggeredFilters":[{"filterType":"Destination IP","trigger":{"value":"81.2.69.144"}},` +
	`{"filterType":"Destination port","trigger":{"value":443}}]}]}`

// sampleLine formats sampleBreach exactly as "run" would for sink sk, and says what it is: a
// line of the sink's format, or for a sentinel sink (which sends rows, not lines) the row of
// the model breach stream.
func sampleLine(cfg *config.Config, sk config.Sink) (what, line string, err error) {
	what = "sample " + sk.Format + " line"
	if sk.Transport == "sentinel" {
		what = "sample row of " + row.ModelAlerts
	}
	var b darktrace.Breach
	if err := json.Unmarshal([]byte(sampleBreach), &b); err != nil {
		return what, "", err
	}
	name := "sample"
	if apps, err := cfg.ShardAppliances(); err == nil && len(apps) > 0 {
		name = apps[0].Name
	}
	a, err := alert.FromBreach(&b, []byte(sampleBreach), name, "dt.example.com")
	if err != nil {
		return what, "", err
	}
	if sk.Transport == "sentinel" {
		r, err := row.Build(a)
		if err != nil {
			return what, "", err
		}
		js, err := json.Marshal(r)
		return what, string(js), err
	}
	f, err := route.NewFormatter(sk, version)
	if err != nil {
		return what, "", err
	}
	out, err := f.Append(nil, a)
	return what, string(out), err
}
