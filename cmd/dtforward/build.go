package main

// build.go holds what run, backfill and check build alike: the API client, so each command
// talks to an appliance through the very same client, and a sink's state directory.

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/poller"
)

// newClient builds the API client of one appliance. With a clock, requests are signed with the
// estimated appliance time and every answer's Date header is checked against the estimate (a
// large disagreement moves it only once /status confirms it).
// onMalformed (may be nil) receives each record of an answer skipped as not valid JSON.
func newClient(app config.Appliance, cfg *config.Config, clock *poller.Clock, onMalformed, onTrimmed func(darktrace.MalformedRecord)) (*darktrace.Client, error) {
	var now func() time.Time
	var onDate func(time.Time)
	if clock != nil {
		now, onDate = clock.SignNow, clock.Observe
	}
	return darktrace.New(darktrace.Config{
		URL: app.URL, PublicToken: app.PublicToken.Value(), PrivateToken: app.PrivateToken.Value(),
		AllowHTTP: app.AllowHTTP, Timeout: cfg.DarktraceTimeout,
		TLS:       tlsconfig.Options{CAFile: app.CAFile, ServerName: app.ServerName, InsecureSkipVerify: app.InsecureSkipVerify},
		UserAgent: "dtforward/" + version, Now: now, OnDate: onDate, OnMalformed: onMalformed, OnTrimmed: onTrimmed,
	})
}

// reportMalformed logs and counts a record of an appliance's answer that was skipped because it
// is not valid JSON (the rest of the answer was delivered). m may be nil.
func reportMalformed(appliance string, m *metrics.Metrics, log zerolog.Logger) func(darktrace.MalformedRecord) {
	return func(r darktrace.MalformedRecord) {
		src := sourceOf(r)
		m.AddRecords(appliance, src, metrics.OutcomeMalformed, 1)
		log.Error().Str("appliance", appliance).Str("source", src).Str("id", r.ID).Int("index", r.Index).Err(r.Err).
			Msg("malformed record skipped: it is not valid JSON; the records around it are delivered")
	}
}

// reportTrimmed logs and counts a record of which a string or an array over the client's
// limit was cut (the record is forwarded, cut), once per kind of cut. m may be nil.
func reportTrimmed(appliance string, m *metrics.Metrics, log zerolog.Logger) func(darktrace.MalformedRecord) {
	return func(r darktrace.MalformedRecord) {
		src := sourceOf(r)
		for _, cut := range r.Cuts {
			m.DecodeAnomaly(src, "("+cut+")")
		}
		log.Warn().Str("appliance", appliance).Str("source", src).Str("id", r.ID).Int("index", r.Index).Err(r.Err).
			Msg("record holds a " + strings.Join(r.Cuts, " and a ") + "; forwarded with it cut (counted in dtforward_decode_anomalies_total)")
	}
}

// sourceOf is the API source of a reported record: the first element of its endpoint path.
func sourceOf(r darktrace.MalformedRecord) string {
	src, _, _ := strings.Cut(strings.TrimPrefix(r.Endpoint, "/"), "/")
	return src
}

// sinkStateDir is where a sink keeps its checkpoints and dead letters: each sink of
// SIEM_SINKS_FILE its own directory; the SIEM_* sink keeps the layout it always had.
func sinkStateDir(cfg *config.Config, sinkName string) string {
	if sinkName == "" {
		return cfg.StateDir
	}
	return filepath.Join(cfg.StateDir, sinkName)
}
