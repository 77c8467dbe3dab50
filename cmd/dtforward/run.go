package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/sink"
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
	if code, ok := fs.parseNoArgs(" (run takes no arguments; configure it with environment variables)"); !ok {
		return code
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

// maxLoggedNames bounds the appliance names listed in the start-up log line.
const maxLoggedNames = 50

// run polls until ctx ends, reopening file sinks on SIGHUP, then shuts down in order.
func (d *daemon) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Hundreds of names would make one enormous line; past a few dozen, the count says enough.
	sets := d.health.Sets
	names := make([]string, 0, min(len(sets), maxLoggedNames))
	for _, s := range sets[:min(len(sets), maxLoggedNames)] {
		names = append(names, s.Appliance)
	}
	ev := d.log.Info().Str("version", version).Int("appliance_count", len(sets)).Strs("appliances", names).Strs("sources", d.cfg.PollSources).
		Dur("interval_ms", d.cfg.PollInterval).Dur("overlap_ms", d.cfg.PollOverlap)
	if d.health.MultiSink {
		sinks := make([]string, len(d.dests))
		for i, dest := range d.dests {
			sinks[i] = dest.Name()
		}
		ev = ev.Strs("sinks", sinks)
	} else {
		ev = ev.Str("format", d.cfg.SIEMFormat).Str("transport", d.cfg.SIEMTransport)
	}
	ev.Msg("dtforward started")

	var wg sync.WaitGroup
	for _, s := range sets {
		s.Start(ctx, &wg)
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		// A shard that owns no appliance still serves /healthz and /readyz until stopped,
		// rather than exiting and being restarted over and over.
		<-ctx.Done()
		close(done)
	}()
	for {
		select {
		case <-hup:
			d.reopen()
		case <-done:
			d.log.Info().Msg("dtforward stopped")
			return
		}
	}
}

// reopen reopens file sinks (SIGHUP, after log rotation).
func (d *daemon) reopen() {
	for _, dest := range d.dests {
		if r, ok := dest.Sink.(sink.Reopener); ok {
			if err := r.Reopen(); err != nil {
				d.log.Error().Err(err).Str("sink", dest.Name()).Msg("SIGHUP: reopening the output file failed")
			} else {
				d.log.Info().Str("sink", dest.Name()).Msg("SIGHUP: output file reopened")
			}
		}
	}
}
