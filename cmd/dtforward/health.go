package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// runHealth is "dtforward health": GET http://<HTTP_ADDRESS>/healthz (or /readyz with --ready)
// and exit 0 on 200, 1 otherwise. It is the container HEALTHCHECK. There is deliberately no
// default address: with HTTP_ADDRESS empty the daemon serves nothing, and a guessed default
// would report "unhealthy" for a healthy process; liveness is then checked on the process
// itself (healthWithoutAddress). A wildcard listen address (":9090", "0.0.0.0:9090",
// "[::]:9090") is probed on loopback.
func runHealth(ctx context.Context, e *env) int {
	fs := newFlags(e, "health", func(w io.Writer) {
		fmt.Fprint(w, `Usage: dtforward health [--ready] [--address HOST:PORT] [--timeout D]

Asks a running dtforward's /healthz (or /readyz with --ready) on HTTP_ADDRESS and exits 0 when
it answers 200, 1 otherwise. With HTTP_ADDRESS empty nothing serves /healthz: health then
checks that a "dtforward run" process is alive (as /healthz would) and says so; readiness
cannot be checked that way (--ready exits 2). Meant for container HEALTHCHECKs: the image
has no shell or curl.
`)
	})
	addr := fs.String("address", e.getenv("HTTP_ADDRESS"), "host:port the daemon serves on (default $HTTP_ADDRESS)")
	ready := fs.Bool("ready", false, "probe /readyz (delivering and caught up) instead of /healthz (process up)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if code, ok := fs.parseNoArgs(""); !ok {
		return code
	}
	if *addr == "" {
		return healthWithoutAddress(e, *ready)
	}
	target, err := probeAddress(*addr)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward health: HTTP_ADDRESS %q: %v\n", *addr, err)
		return exitUsage
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+path, nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward health: %v\n", err)
		return exitUsage
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward health: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(e.stderr, "dtforward health: %s: HTTP %d: %s", path, resp.StatusCode, body)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "%s", body)
	return exitOK
}

// probeAddress turns a listen address into one to connect to.
func probeAddress(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
