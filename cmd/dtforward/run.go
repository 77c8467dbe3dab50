package main

import (
	"context"
	"fmt"
	"io"

	"github.com/dtforward/dtforward/config"
)

// runRun is "dtforward run": the env-configured daemon. Configuration and checkpoint problems
// exit 2 before anything starts; after that it runs until SIGTERM/SIGINT and exits 0.
func runRun(ctx context.Context, e *env) int {
	fs := newFlags(e, "run", func(w io.Writer) {
		fmt.Fprint(w, `Usage: dtforward run

Polls the appliance(s) forever and forwards every alert to the SIEM; configured only by
environment variables. Checkpoints go to STATE_DIR (./state unless set): keep that directory,
it is how a restart resumes without losing or re-sending alerts. Run "dtforward check" first
to test the configuration. Stop it with SIGTERM or Ctrl-C; exit 0 after a clean stop, 2 on a
configuration error.
`)
		envHelp(w)
	})
	if code, ok := fs.parse(); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(e, "run", "unexpected argument %q (run takes no arguments; configure it with environment variables)", fs.Arg(0))
	}
	cfg, err := loadConfig(config.ModeRun, e)
	if err != nil {
		return printConfigError(e.stderr, "run", err)
	}
	return serve(ctx, e, cfg, daemonOptions{})
}

// serve composes and runs the daemon until ctx ends.
func serve(ctx context.Context, e *env, cfg *config.Config, o daemonOptions) int {
	log := newLogger(cfg, e.stderr)
	d, err := newDaemon(cfg, e, log, o)
	if err != nil {
		return printConfigError(e.stderr, "run", err)
	}
	defer d.close()
	d.run(ctx)
	return exitOK
}
