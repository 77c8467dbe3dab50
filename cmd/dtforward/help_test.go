package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/sink"
)

var update = flag.Bool("update", false, "rewrite testdata/help/*.txt from the current --help output")

// TestHelpGolden holds every command's --help to testdata/help/<command>.txt: help goes to
// stdout with exit 0 and nothing on stderr. After a deliberate change, run
// go test ./cmd/dtforward -run TestHelpGolden -update and review the diff.
func TestHelpGolden(t *testing.T) {
	cases := map[string][]string{"dtforward": {"--help"}}
	for name := range commands {
		cases[name] = []string{name, "--help"}
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, context.Background(), nil, cases[name]...)
			if code != exitOK || stderr != "" {
				t.Errorf("%q: exit %d, stderr %q; want exit 0 and help on stdout only", cases[name], code, stderr)
			}
			golden := filepath.Join("testdata", "help", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if stdout != string(want) {
				t.Errorf("%q differs from %s (run with -update after a deliberate change):\n got:\n%s\nwant:\n%s", cases[name], golden, stdout, want)
			}
		})
	}
}

// TestHelpSpellings checks the other ways of asking for help and the version.
func TestHelpSpellings(t *testing.T) {
	_, top, _ := runCmd(t, context.Background(), nil, "--help")
	_, runHelp, _ := runCmd(t, context.Background(), nil, "run", "--help")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, top},
		{[]string{"help"}, top},
		{[]string{"help", "run"}, runHelp},
		{[]string{"run", "-h"}, runHelp},
	} {
		code, stdout, stderr := runCmd(t, context.Background(), nil, tc.args...)
		if code != exitOK || stdout != tc.want || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %.80q; want exit 0 and the same help as --help", tc.args, code, stderr, stdout)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, stdout, stderr := runCmd(t, context.Background(), nil, args...)
		want := "dtforward " + version + " (commit " + commit + ", " + runtime.Version() + ")\n"
		if code != exitOK || stdout != want || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and %q", args, code, stdout, stderr, want)
		}
	}
}

// TestUsageErrors checks that every command reports a usage error on stderr, with a pointer
// to --help, and exits 2 with nothing on stdout.
func TestUsageErrors(t *testing.T) {
	cases := [][]string{{}, {"nosuchcommand"}, {"-x"}}
	for name := range commands {
		cases = append(cases, []string{name, "--no-such-flag"})
	}
	for _, args := range cases {
		code, stdout, stderr := runCmd(t, context.Background(), nil, args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "--help") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout and a pointer to --help on stderr", args, code, stdout, stderr)
		}
	}
	for _, name := range []string{"run", "check", "demo", "health", "version"} {
		code, stdout, stderr := runCmd(t, context.Background(), nil, name, "extra")
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, `unexpected argument "extra"`) {
			t.Errorf("%s extra: exit %d, stdout %q, stderr %q; want exit 2 naming the argument", name, code, stdout, stderr)
		}
	}
}

// TestRunHelpListsEveryVariable keeps run --help generated from the configuration table.
func TestRunHelpListsEveryVariable(t *testing.T) {
	_, stdout, _ := runCmd(t, context.Background(), nil, "run", "--help")
	for _, v := range config.Table() {
		base, _ := strings.CutSuffix(v.Name, "_FILE")
		if !strings.Contains(stdout, "\n  "+v.Name+" ") && !strings.Contains(stdout, "\n  "+v.Name+"=") &&
			!strings.Contains(stdout, "\n  "+base+"[_FILE]") {
			t.Errorf("run --help does not list %s", v.Name)
		}
	}
}

// TestDemoLogDefaults: on a terminal demo logs warnings only (console format is newLogger's
// choice there); piped, it logs JSON at LOG_LEVEL as run does; an explicit LOG_LEVEL wins.
func TestDemoLogDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tty      bool
		logLevel string
		want     string
	}{
		{"terminal", true, "", "warn"},
		{"terminal, LOG_LEVEL set", true, "debug", "debug"},
		{"pipe", false, "", "info"},
	} {
		cfg := &config.Config{LogLevel: "info"}
		if tc.logLevel != "" {
			cfg.LogLevel = tc.logLevel
		}
		lowered := demoLogDefaults(cfg, func(k string) string {
			if k == "LOG_LEVEL" {
				return tc.logLevel
			}
			return ""
		}, tc.tty)
		if cfg.LogLevel != tc.want || lowered != (tc.want == "warn") {
			t.Errorf("%s: level %s (lowered %v), want %s", tc.name, cfg.LogLevel, lowered, tc.want)
		}
	}
}

// TestConsoleLogsWithoutColourInAPipe: LOG_FORMAT=console into a pipe or file is plain text.
func TestConsoleLogsWithoutColourInAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	log := newLogger(&config.Config{LogFormat: "console", LogLevel: "info"}, w)
	log.Warn().Str("appliance", "dt").Msg("hello")
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "WRN hello appliance=dt") || strings.Contains(string(out), "\x1b[") {
		t.Errorf("console log into a pipe: %q, want plain text without ANSI escapes", out)
	}
}

// TestConfigErrorPointsAtHelp: a configuration error names each variable, then where to read
// about them and how to try dtforward without an appliance.
func TestConfigErrorPointsAtHelp(t *testing.T) {
	for _, name := range []string{"run", "check"} {
		code, stdout, stderr := runCmd(t, context.Background(), nil, name)
		want := "dtforward " + name + ": DARKTRACE_URL: required for " + name
		hint := `Run "dtforward ` + name + ` --help" for the variables it reads, or "dtforward demo" to try dtforward without an appliance.` + "\n"
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, want) || !strings.HasSuffix(stderr, hint) {
			t.Errorf("%s without configuration: exit %d, stdout %q, stderr %q; want exit 2, %q and the hint last", name, code, stdout, stderr, want)
		}
	}
}

// TestDemoRandomSeed: without --seed demo picks a seed short enough to retype, never 0
// (which means "pick one").
func TestDemoRandomSeed(t *testing.T) {
	seen := map[int64]bool{}
	for range 1000 {
		s := randomSeed()
		if s < 1 || s > 1_000_000 {
			t.Fatalf("seed %d outside 1..1000000", s)
		}
		seen[s] = true
	}
	if len(seen) < 900 {
		t.Errorf("%d distinct seeds in 1000 draws: not random", len(seen))
	}
}

// TestHelpInFull runs the real binary: "run --help" gives every variable's whole description
// (wrapped, never cut with "…"), and the top-level help names every transport the sink has.
func TestHelpInFull(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "run", "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	help := string(out)
	if strings.Contains(help, "…") {
		t.Errorf("run --help cuts descriptions with \"…\":\n%s", help)
	}
	flat := strings.Join(strings.Fields(help), " ")
	for _, v := range config.Table() {
		if strings.HasSuffix(v.Name, "_FILE") && strings.Contains(help, strings.TrimSuffix(v.Name, "_FILE")+"[_FILE]") {
			continue // a secret's file variant shares its line
		}
		if d := strings.Join(strings.Fields(v.Description), " "); !strings.Contains(flat, d) {
			t.Errorf("run --help lacks the description of %s in full: %q", v.Name, d)
		}
	}
	out, err = exec.Command(bin, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	top := strings.ToLower(string(out))
	for _, tr := range sink.Transports() {
		if !strings.Contains(top, tr) {
			t.Errorf("dtforward --help does not mention the %s transport:\n%s", tr, out)
		}
	}
}
