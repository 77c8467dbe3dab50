package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/simulator"
)

const simulateHelp = `NAME
    dtforward simulate - serve a fake Darktrace appliance API

SYNOPSIS
    dtforward simulate [--listen ADDR] [--tls | --cert FILE --key FILE] [--seed N]
                       [--history DURATION] [--history-count N] [--rate R]
                       [--late-fraction F] [--late-delay DURATION] [--hostile-fraction F]
                       [--system-fraction F] [--ack-fraction F] [--missing-creation-fraction F]
                       [--clock-offset DURATION] [--hostname FQDN] [--no-urls] [--faults SPEC]
                       [--newest-first] [--verbose]
                       [--public-token T --private-token T]
                       [--appliances N --appliances-file FILE]

DESCRIPTION
    Serves /modelbreaches, /antigena, /antigena/summary, /aianalyst/incidentevents and
    /status the way a Darktrace appliance does: every request must carry DTAPI-Token,
    DTAPI-Date (within 30 minutes of the appliance clock) and a valid DTAPI-Signature, or it
    gets the appliance's own error (400 "API SIGNATURE ERROR" / "API DATE ERROR", or a 302 to
    /login). Records are generated from --seed, so the same flags give the same records.

    On start it prints, on stdout, the variables dtforward needs to reach it:
        DARKTRACE_URL=https://127.0.0.1:8443
        DARKTRACE_CA_FILE=/tmp/dtforward-simulator-.../ca.pem    (with --tls only)
    It serves until interrupted (SIGINT/SIGTERM) and then removes its temporary files.

    With --appliances N it serves N independent appliances, each on its own free port of
    the --listen host, appliance i (0 to N-1) generating its records from seed + i; every
    other flag (history, rate, faults, tokens, TLS) applies to each appliance. It writes
    FILE, a list that DARKTRACE_APPLIANCES_FILE accepts as is (names sim-0..., labels
    {customer: customer-0...}, the token pair, allow_http or the CA file), and prints
        DARKTRACE_APPLIANCES_FILE=FILE
    FILE holds the tokens (mode 0600) and goes stale when the simulator stops.

OPTIONS
    --listen ADDR            address to listen on (default 127.0.0.1:8443; port 0 picks one)
    --tls                    serve HTTPS with a generated self-signed certificate for
                             127.0.0.1, ::1 and localhost; its PEM path is printed
    --cert FILE, --key FILE  serve HTTPS with this certificate and key instead (implies --tls)
    --seed N                 seed for every generated record (default 1)
    --history DURATION       how far back the start-up breaches reach (default 24h)
    --history-count N        breaches spread over --history at start (default 5000)
    --rate R                 new breaches per second while running, e.g. 5, 5/s, 300/m,
                             0.5/s (default 0: none). New Antigena actions, action state
                             changes and AI Analyst events come along with them.
    --late-fraction F        share of breaches created 1m..--late-delay after their
                             activity time (default 0.05); the rest lag by 1-30 s
    --late-delay DURATION    longest creation lag of a late breach (default 1h)
    --hostile-fraction F     share of records whose hostnames, model names, descriptions and
                             usernames carry hostile strings: pipes, '=', backslashes, CR/LF,
                             tabs, NUL, invalid UTF-8, forged syslog/CEF headers, 10 KB values
                             (default 0)
    --system-fraction F      share of System::System breaches with device {"did": -1}
                             (default 0.01)
    --ack-fraction F         share of acknowledged breaches and events, hidden unless a query
                             sends includeacknowledged=true (default 0.1)
    --clock-offset DURATION  run the appliance clock this far from the real one, e.g. -45m,
                             to exercise DTAPI-Date errors (default 0)
    --hostname FQDN          appliance name used in breachUrl and incidentEventUrl
                             (default: the address it serves on, as in DARKTRACE_URL, so
                             they match the links dtforward makes for Antigena actions)
    --no-urls                behave like an appliance without a configured FQDN: no
                             breachUrl or incidentEventUrl at all
    --missing-creation-fraction F
                             share of breaches without creationTime, as older appliance
                             builds send them (default 0)
    --odd-fraction F         share of records in the other shapes real appliances send
                             (default 0): acknowledged as {"time","username"}, devices
                             known only by devicelabel, placeholder IPs (10.0.0.#36859),
                             literal \n in descriptions, absent priority/URL/commentCount,
                             Antigena "updated" as a number; chosen from --seed
    --faults SPEC            inject faults into authenticated requests (see FAULTS)
    --newest-first           sort list responses newest first (the API guide only promises
                             "time-sorted"; the default is oldest first)
    --verbose                log every request (path, query, outcome such as ok,
                             auth:signature, auth:date, fault:503) to stderr
    --public-token T, --private-token T
                             the API token pair (default: the environment, see ENVIRONMENT)
    --appliances N           serve N appliances (default 1; up to 5000), see DESCRIPTION
    --appliances-file FILE   where to write their appliances file (required when N > 1)

FAULTS
    SPEC is groups separated by ";", each "[ENDPOINT:]ITEM[,ITEM...]" where ENDPOINT is one of
    modelbreaches, antigena, antigena/summary, aianalyst, status (default: all) and ITEM is
    KIND[@PARAM][=PROBABILITY][*COUNT]. PROBABILITY defaults to 1; COUNT limits how many
    requests get the fault. KIND is one of:
        500            500 with a JSON body          500html, 502, 503   HTML error pages
        429[@SECS]     429 with Retry-After          hang|timeout[@DUR]  no answer (or late)
        slow[@DUR]     body trickled, DUR per 512 B  truncated           connection cut mid-JSON
        invalid        200 with broken JSON          loginpage           200 HTML login page
        signature      400 API SIGNATURE ERROR       date                400 API DATE ERROR
        forbidden      302 to /403                   login               302 to /login
        reset          TCP reset                     large[@N]           N (10000) extra records
        error200       200 {"error": "..."}          responseerror       200 {"response": "ERROR"}
        empty          200 [] (no records)           deep[@N]            + 1 record N (100000) levels deep
    Example: "modelbreaches:500=0.1,timeout=0.05;antigena:429*3"

ENVIRONMENT
    DARKTRACE_PUBLIC_TOKEN, DARKTRACE_PRIVATE_TOKEN
        the token pair when the flags are not given (or DARKTRACE_PUBLIC_TOKEN_FILE and
        DARKTRACE_PRIVATE_TOKEN_FILE naming files that hold them)

EXIT STATUS
    0 after an interrupt, 1 when it cannot listen, 2 on a usage error.

EXAMPLES
    DARKTRACE_PUBLIC_TOKEN=pub DARKTRACE_PRIVATE_TOKEN=priv \
        dtforward simulate --tls --rate 2/s --late-fraction 0.1 --faults 'modelbreaches:503=0.05'
`

// runSimulate is "dtforward simulate": the simulator package served until ctx is cancelled.
func runSimulate(ctx context.Context, e *env) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {} // errors get a one-line hint; --help prints the full page to stdout
	listen := fs.String("listen", "127.0.0.1:8443", "")
	useTLS := fs.Bool("tls", false, "")
	cert := fs.String("cert", "", "")
	key := fs.String("key", "", "")
	seed := fs.Int64("seed", 1, "")
	history := fs.Duration("history", 24*time.Hour, "")
	historyCount := fs.Int("history-count", 5000, "")
	rate := fs.String("rate", "0", "")
	late := fs.Float64("late-fraction", 0.05, "")
	lateDelay := fs.Duration("late-delay", time.Hour, "")
	hostile := fs.Float64("hostile-fraction", 0, "")
	system := fs.Float64("system-fraction", 0.01, "")
	ack := fs.Float64("ack-fraction", 0.1, "")
	offset := fs.Duration("clock-offset", 0, "")
	hostname := fs.String("hostname", "", "")
	faultSpec := fs.String("faults", "", "")
	verbose := fs.Bool("verbose", false, "")
	newestFirst := fs.Bool("newest-first", false, "")
	missingCreation := fs.Float64("missing-creation-fraction", 0, "")
	oddFraction := fs.Float64("odd-fraction", 0, "")
	noURLs := fs.Bool("no-urls", false, "")
	pub := fs.String("public-token", "", "")
	priv := fs.String("private-token", "", "")
	appliances := fs.Int("appliances", 1, "")
	appliancesFile := fs.String("appliances-file", "", "")
	if err := fs.Parse(e.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = io.WriteString(e.stdout, simulateHelp)
			return exitOK
		}
		fmt.Fprintln(e.stderr, `Run "dtforward simulate --help" for usage.`)
		return exitUsage
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	perSecond, err := parseRate(*rate)
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"--late-fraction", *late}, {"--hostile-fraction", *hostile}, {"--system-fraction", *system}, {"--ack-fraction", *ack},
		{"--missing-creation-fraction", *missingCreation}} {
		if f.v < 0 || f.v > 1 {
			problems = append(problems, fmt.Sprintf("%s %v: want a share from 0 to 1", f.name, f.v))
		}
	}
	if *history <= 0 {
		problems = append(problems, fmt.Sprintf("--history %v: want a positive duration such as 24h", *history))
	}
	if *historyCount < 0 {
		problems = append(problems, fmt.Sprintf("--history-count %d: want 0 or more", *historyCount))
	}
	if *lateDelay < time.Minute {
		problems = append(problems, fmt.Sprintf("--late-delay %v: want at least 1m", *lateDelay))
	}
	if *appliances < 1 || *appliances > maxSimAppliances {
		problems = append(problems, fmt.Sprintf("--appliances %d: want 1 to %d", *appliances, maxSimAppliances))
	} else if *appliances > 1 && *appliancesFile == "" {
		problems = append(problems, fmt.Sprintf("--appliances %d needs --appliances-file FILE to write their URLs and tokens to", *appliances))
	}
	if (*cert == "") != (*key == "") {
		problems = append(problems, "--cert and --key must be given together")
	}
	faults, err := simulator.ParseFaults(*faultSpec)
	if err != nil {
		problems = append(problems, "--faults: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	publicToken := tokenFrom(e, *pub, "DARKTRACE_PUBLIC_TOKEN", &problems)
	privateToken := tokenFrom(e, *priv, "DARKTRACE_PRIVATE_TOKEN", &problems)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(e.stderr, "dtforward simulate: %s\n", p)
		}
		fmt.Fprintln(e.stderr, `Run "dtforward simulate --help" for usage.`)
		return exitUsage
	}
	count := *historyCount
	if count == 0 {
		count = -1 // the package reads 0 as "default"; the flag's 0 means none
	}
	ackFraction := *ack
	if ackFraction == 0 {
		ackFraction = -1
	}
	opts := simulator.Options{
		PublicToken: publicToken, PrivateToken: privateToken,
		Seed: *seed, History: *history, HistoryCount: count, Rate: perSecond,
		LateFraction: *late, LateDelay: *lateDelay, HostileFraction: *hostile,
		SystemFraction: *system, AckFraction: ackFraction, ClockOffset: *offset,
		Hostname: *hostname, CertFile: *cert, KeyFile: *key,
		OnRequest: requestLogger(e.stderr, *verbose), NewestFirst: *newestFirst,
		MissingCreationFraction: *missingCreation, NoURLs: *noURLs, OddFraction: *oddFraction,
	}
	useTLSAll := *useTLS || *cert != ""
	if *appliances > 1 || *appliancesFile != "" {
		return serveMany(ctx, e, opts, faults, *listen, useTLSAll, *appliances, *appliancesFile)
	}
	sim, err := simulator.New(opts)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward simulate: %v\n", err)
		return exitUsage
	}
	defer sim.Close()
	sim.SetFaults(faults)
	url, err := sim.Start(*listen, useTLSAll)
	if err != nil {
		hint := ""
		if errors.Is(err, syscall.EADDRINUSE) {
			hint = " (another simulator still running? stop it, or pick a free port with --listen 127.0.0.1:0)"
		}
		fmt.Fprintf(e.stderr, "dtforward simulate: %v%s\n", err, hint)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "DARKTRACE_URL=%s\n", url)
	if ca := sim.CAFile(); ca != "" {
		fmt.Fprintf(e.stdout, "DARKTRACE_CA_FILE=%s\n", ca)
	}
	fmt.Fprintf(e.stderr, "dtforward simulate: serving a simulated appliance at %s (seed %d, %d breaches of history, %g new/s); Ctrl-C or SIGTERM stops it\n",
		url, *seed, *historyCount, perSecond)
	<-ctx.Done()
	if err := sim.Close(); err != nil {
		fmt.Fprintf(e.stderr, "dtforward simulate: %v\n", err)
	}
	return exitOK
}

// maxSimAppliances bounds --appliances: each appliance is a listener and its records.
const maxSimAppliances = 5000

// simAppliance is one entry of the appliances file simulate writes; the keys are those of
// DARKTRACE_APPLIANCES_FILE.
type simAppliance struct {
	Name         string            `json:"name"`
	URL          string            `json:"url"`
	PublicToken  string            `json:"public_token"`
	PrivateToken string            `json:"private_token"`
	AllowHTTP    bool              `json:"allow_http,omitempty"`
	CAFile       string            `json:"ca_file,omitempty"`
	Labels       map[string]string `json:"labels"`
}

// serveMany is simulate --appliances N: N simulators, appliance i seeded with seed + i, each
// on a free port of listen's host, described in an appliances file at path.
func serveMany(ctx context.Context, e *env, opts simulator.Options, faults []simulator.Fault, listen string, useTLS bool, n int, path string) int {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward simulate: --listen %q: %v\n", listen, err)
		return exitUsage
	}
	addr := net.JoinHostPort(host, "0")
	width := len(strconv.Itoa(n - 1))
	sims := make([]*simulator.Simulator, 0, n)
	defer func() {
		for _, s := range sims {
			if err := s.Close(); err != nil {
				fmt.Fprintf(e.stderr, "dtforward simulate: %v\n", err)
			}
		}
	}()
	entries := make([]simAppliance, 0, n)
	for i := range n {
		o := opts
		o.Seed = opts.Seed + int64(i)
		sim, err := simulator.New(o)
		if err != nil {
			fmt.Fprintf(e.stderr, "dtforward simulate: %v\n", err)
			return exitUsage
		}
		sims = append(sims, sim)
		sim.SetFaults(faults)
		url, err := sim.Start(addr, useTLS)
		if err != nil {
			fmt.Fprintf(e.stderr, "dtforward simulate: appliance %d: %v\n", i, err)
			return exitFailure
		}
		entries = append(entries, simAppliance{
			Name: fmt.Sprintf("sim-%0*d", width, i), URL: url,
			PublicToken: opts.PublicToken, PrivateToken: opts.PrivateToken,
			AllowHTTP: !useTLS, CAFile: sim.CAFile(),
			Labels: map[string]string{"customer": fmt.Sprintf("customer-%0*d", width, i)},
		})
	}
	if err := writeAppliancesFile(path, entries); err != nil {
		fmt.Fprintf(e.stderr, "dtforward simulate: --appliances-file: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "DARKTRACE_APPLIANCES_FILE=%s\n", path)
	fmt.Fprintf(e.stderr, "dtforward simulate: serving %d simulated appliances on %s (seeds %d..%d), listed in %s; Ctrl-C to stop\n",
		n, host, opts.Seed, opts.Seed+int64(n-1), path)
	<-ctx.Done()
	return exitOK
}

// writeAppliancesFile writes entries as JSON, atomically and readable by the owner only (it
// holds the tokens).
func writeAppliancesFile(path string, entries []simAppliance) error {
	data, err := json.MarshalIndent(entries, "", "  ") //nolint:gosec // G117: the simulator's own token pair, in a 0600 file run must read
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".appliances-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// requestLogger prints one line per request to w when on (nil otherwise). Lines carry the
// path, query and outcome, never the DTAPI headers.
func requestLogger(w io.Writer, on bool) func(simulator.Request) {
	if !on {
		return nil
	}
	var mu sync.Mutex
	return func(r simulator.Request) {
		q := ""
		if r.RawQuery != "" {
			q = "?" + r.RawQuery
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s %s %s%s -> %s\n", r.Time.UTC().Format(time.RFC3339), r.Method, r.Path, q, r.Outcome)
	}
}

// parseRate reads "5", "5/s", "300/m" or "2/h" as breaches per second.
func parseRate(s string) (float64, error) {
	num, unit, hasUnit := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(num, 64)
	per := time.Second
	if hasUnit {
		switch unit {
		case "s":
		case "m", "min":
			per = time.Minute
		case "h":
			per = time.Hour
		default:
			err = errors.New("bad unit")
		}
	}
	if err != nil || v < 0 || v != v || v > 1e6 {
		return 0, fmt.Errorf("--rate %q: want breaches per second such as 5, 5/s, 300/m or 0", s)
	}
	return v / per.Seconds(), nil
}

// tokenFrom returns the flag value, else the token run would read from NAME or NAME_FILE
// (config.SecretFromEnv: the same files, the same trimming); a missing token adds a problem
// that names both ways to give it.
func tokenFrom(e *env, flagValue, name string, problems *[]string) string {
	if flagValue != "" {
		return flagValue
	}
	v, err := config.SecretFromEnv(e.getenv, name)
	if err != nil {
		*problems = append(*problems, err.Error())
		return ""
	}
	if v != "" {
		return v
	}
	flagName := "--" + strings.ToLower(strings.TrimPrefix(name, "DARKTRACE_"))
	flagName = strings.ReplaceAll(flagName, "_", "-")
	*problems = append(*problems, fmt.Sprintf("%s is not set: give the token in %s (or %s_FILE) or with %s", name, name, name, flagName))
	return ""
}
