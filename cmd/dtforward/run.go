package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/dtforward/dtforward/config"
)

// runRun is "dtforward run": the env-configured daemon. Configuration and checkpoint problems
// exit 2 before anything starts; after that it runs until SIGTERM/SIGINT and exits 0.
func runRun(ctx context.Context, e *env) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: dtforward run\n\nPolls the appliance(s) forever and forwards every alert; configured by environment variables (see README.md).")
	}
	if err := fs.Parse(e.args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "dtforward run: unexpected argument %q (run takes no arguments; configure it with environment variables)\n", fs.Arg(0))
		return exitUsage
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
