package main

// build.go holds what run, backfill and check build alike: the API client, so each command
// talks to an appliance through the very same client, and a sink's state directory.

import (
	"path/filepath"
	"time"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/poller"
)

// newClient builds the API client of one appliance. With a clock, requests are signed with the
// estimated appliance time and every answer's Date header keeps the estimate current.
func newClient(app config.Appliance, cfg *config.Config, clock *poller.Clock) (*darktrace.Client, error) {
	var now func() time.Time
	var onDate func(time.Time)
	if clock != nil {
		now, onDate = clock.Now, clock.Observe
	}
	return darktrace.New(darktrace.Config{
		URL: app.URL, PublicToken: app.PublicToken.Value(), PrivateToken: app.PrivateToken.Value(),
		AllowHTTP: app.AllowHTTP, Timeout: cfg.DarktraceTimeout,
		TLS:       tlsconfig.Options{CAFile: app.CAFile, ServerName: app.ServerName, InsecureSkipVerify: app.InsecureSkipVerify},
		UserAgent: "dtforward/" + version, Now: now, OnDate: onDate,
	})
}

// sinkStateDir is where a sink keeps its checkpoints and dead letters: each sink of
// SIEM_SINKS_FILE its own directory; the SIEM_* sink keeps the layout it always had.
func sinkStateDir(cfg *config.Config, sinkName string) string {
	if sinkName == "" {
		return cfg.StateDir
	}
	return filepath.Join(cfg.StateDir, sinkName)
}
