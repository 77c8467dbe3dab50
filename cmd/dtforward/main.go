// Command dtforward forwards Darktrace model breaches, Antigena actions and AI Analyst incident
// events to a SIEM as CEF, LEEF or JSON syslog lines. Run "dtforward --help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/config"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure, e.g. an incomplete backfill
	exitUsage   = 2 // usage or configuration error
)

// env is what a subcommand may touch of the process, so tests can run commands in-process.
type env struct {
	args    []string // arguments after the subcommand name
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	environ func() []string
	// process is true when getenv/environ are the real process environment (main), so the
	// configuration is decoded by envconfig itself; tests inject their own environment.
	process bool
}

type command struct {
	summary string
	run     func(ctx context.Context, e *env) int
}

// commands is the one table of subcommands; each lives in its own file.
var commands = map[string]command{
	"run":      {"poll the appliance forever and forward every alert (env-configured)", runRun},
	"backfill": {"forward every record of a past time range once, resumably", runBackfill},
	"format":   {"convert API JSON (file or stdin) to CEF, LEEF or JSON lines", runFormat},
	"simulate": {"serve a fake Darktrace appliance API for tests and demos", runSimulate},
	"demo":     {"simulator + run, printing CEF to stdout: no configuration needed", runDemo},
	"check":    {"validate config, reach the appliance and the sink, print a sample line", runCheck},
	"health":   {"exit 0 if the local /healthz answers (for container health checks)", runHealth},
	"version":  {"print version, commit and Go version", runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], &env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, environ: os.Environ, process: true,
	})
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	case "help":
		// "dtforward help run" is "dtforward run --help".
		if len(args) == 1 {
			usage(e.stdout)
			return exitOK
		}
		args = []string{args[1], "--help"}
	case "-v", "-version", "--version":
		args = []string{"version"}
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "dtforward: unknown command %q\nRun \"dtforward --help\" for the commands.\n", args[0])
		return exitUsage
	}
	e.args = args[1:]
	return cmd.run(ctx, e)
}

// loadConfig loads and validates the configuration a command needs.
func loadConfig(mode config.Mode, e *env) (*config.Config, error) {
	if e.process {
		return config.FromProcess(mode)
	}
	return config.LoadFor(mode, e.getenv, e.environ())
}

func usage(w io.Writer) {
	fmt.Fprint(w, `dtforward forwards Darktrace model breaches, Antigena actions and AI Analyst incident
events to a SIEM as CEF, LEEF or JSON over syslog (UDP, TCP, TLS) or RELP, to stdout or a file.

Usage: dtforward <command> [flags]
       dtforward --version | -v

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Configuration comes from environment variables (README.md, "Configuration reference";
"dtforward run --help" lists them). Run "dtforward <command> --help" for a command's flags.
New here? "dtforward demo" shows the output with no configuration; README.md, "Try it against
the simulator", walks through simulate, check and run.
Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
`)
}

// newLogger returns the zerolog logger on w: JSON, or console when LOG_FORMAT=console or, with
// LOG_FORMAT unset, when w is a terminal. Console output is coloured only on a terminal, so a
// pipe or a file never receives ANSI escapes.
func newLogger(cfg *config.Config, w io.Writer) zerolog.Logger {
	tty := isTerminal(w)
	if cfg.LogFormat == "console" || (cfg.LogFormat == "" && tty) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !tty}
	}
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil || cfg.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// isTerminal reports whether w is a terminal (a TTY or a Windows console).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// configError marks errors that are the user's to fix before starting: exit 2.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// printConfigError prints a configuration error one problem per line, prefixed with the
// command, and returns exitUsage.
func printConfigError(w io.Writer, cmd string, err error) int {
	var ce *config.Error
	var lines []string
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			lines = append(lines, p.Error())
		}
	} else {
		lines = strings.Split(err.Error(), "\n")
	}
	for _, l := range lines {
		fmt.Fprintf(w, "dtforward %s: %s\n", cmd, l)
	}
	if ce != nil {
		fmt.Fprintf(w, "Run \"dtforward %s --help\" for the variables it reads, or \"dtforward demo\" to try dtforward without an appliance.\n", cmd)
	}
	return exitUsage
}
