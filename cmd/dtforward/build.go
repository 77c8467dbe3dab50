package main

// build.go holds the API client builder run, backfill and check share, so each command talks
// to an appliance through the very same client.

import (
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
