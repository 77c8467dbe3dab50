package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
)

// runDemo is "dtforward demo": the built-in simulator on 127.0.0.1 (HTTPS, an hour of history,
// about two new breaches a second, realistic hostile-free records) polled every 2 s by the real
// daemon, printing CEF lines to stdout and logs to stderr. No configuration is needed; SIEM_FORMAT,
// POLL_SOURCES, LOG_LEVEL and friends are honoured when set. State lives in a temporary
// directory removed on exit. Stop it with Ctrl-C.
func runDemo(ctx context.Context, e *env) int {
	fs := newFlags(e, "demo", func(w io.Writer) {
		fmt.Fprint(w, `Usage: dtforward demo [--interval 2s] [--rate 2] [--seed N]

Starts the built-in Darktrace simulator (HTTPS on 127.0.0.1) and forwards its model breaches,
Antigena actions and AI Analyst events to stdout as CEF, exactly as "run" would: no
configuration needed. SIEM_FORMAT still picks the format; the output is always stdout and
nothing is kept (state lives in a temporary directory). On a terminal only warnings and errors
are logged, readably; otherwise logs are JSON on stderr. Ctrl-C stops it.
`)
	})
	rate := fs.Float64("rate", 2, "new breaches per second")
	interval := fs.Duration("interval", 2*time.Second, "poll interval")
	seed := fs.Int64("seed", 0, "simulator seed; the same seed gives the same records (default: random, printed at start)")
	if code, ok := fs.parseNoArgs(""); !ok {
		return code
	}
	if *seed == 0 {
		*seed = randomSeed()
	}
	cfg, err := loadConfig(config.ModeDemo, e)
	if err != nil {
		return printConfigError(e.stderr, "demo", err)
	}
	pub, priv := randomToken(), randomToken()
	sim, err := simulator.New(simulator.Options{
		PublicToken: pub, PrivateToken: priv,
		Seed: *seed, History: time.Hour, HistoryCount: 120, Rate: *rate,
		LateFraction: 0.05, LateDelay: 20 * time.Minute,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward demo: simulator: %v\n", err)
		return exitFailure
	}
	url, err := sim.Start("127.0.0.1:0", true)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward demo: simulator: %v\n", err)
		return exitFailure
	}
	defer sim.Close()
	state, err := os.MkdirTemp("", "dtforward-demo-")
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward demo: %v\n", err)
		return exitFailure
	}
	defer os.RemoveAll(state)

	cfg.DarktraceURL = url
	cfg.DarktraceCAFile = sim.CAFile()
	cfg.DarktraceName = "demo"
	cfg.DarktracePublicToken = config.Secret(pub)
	cfg.DarktracePrivateToken = config.Secret(priv)
	cfg.DarktraceAppliancesFile = ""
	cfg.StateDir = state
	cfg.PollStart = "1h"
	cfg.PollInterval = *interval
	cfg.SIEMTransport = "stdout"
	cfg.SIEMAddress = ""
	if e.getenv("POLL_SOURCES") == "" {
		cfg.PollSources = darktrace.SourceNames()
	}
	if e.getenv("DARKTRACE_MAX_REQUESTS_PER_MINUTE") == "" {
		// The appliance is the simulator in this process, polled every --interval over every
		// source: nothing to protect, and a bound sized for POLL_INTERVAL=60s would slow the
		// demo down.
		cfg.DarktraceMaxRequestsPerMinute = config.MaxRequestsPerMinute
	}
	quiet := demoLogDefaults(cfg, e.getenv, isTerminal(e.stderr))
	note := ""
	if quiet {
		note = "; only warnings are logged (LOG_LEVEL=info shows every poll)"
	}
	fmt.Fprintf(e.stderr, "dtforward demo: simulated appliance at %s (seed %d); %s lines follow on stdout%s. Ctrl-C to stop.\n",
		url, *seed, strings.ToUpper(cfg.SIEMFormat), note)
	return serve(ctx, e, cfg, daemonOptions{})
}

// demoLogDefaults adapts the logging to where it is read. On a terminal the CEF lines and the
// logs share one screen, so unless LOG_LEVEL is set demo logs only warnings and errors (in
// console format, newLogger's choice for a terminal): the screen shows alerts, not poll
// bookkeeping. Off a terminal (piped, a file, CI) nothing changes: JSON at LOG_LEVEL. It
// reports whether it lowered the level.
func demoLogDefaults(cfg *config.Config, getenv func(string) string, stderrTTY bool) bool {
	if !stderrTTY || getenv("LOG_LEVEL") != "" {
		return false
	}
	cfg.LogLevel = "warn"
	return true
}

// randomSeed picks a seed short enough to retype: 1 to 1 000 000 (0 means "pick one").
func randomSeed() int64 {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return int64(binary.BigEndian.Uint64(b)%1_000_000) + 1
}

func randomToken() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
