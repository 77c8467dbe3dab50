package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// healthWithoutAddress answers "dtforward health" when HTTP_ADDRESS is empty. The image's
// HEALTHCHECK must not depend on an optional setting: a user who turns the HTTP endpoint off
// still runs a healthy container. What can be verified then is what /healthz itself says —
// the daemon process is up — so look for a "dtforward run" process (in a container it is
// PID 1, and the health command runs in its PID namespace). Exit 1, not 2, when there is
// none: Docker reserves 2 and treats it as unhealthy anyway.
func healthWithoutAddress(e *env, ready bool) int {
	if ready {
		fmt.Fprintln(e.stderr, "dtforward health: --ready needs HTTP_ADDRESS (or --address host:port): readiness is only served on /readyz")
		return exitUsage
	}
	pid, ok := findRunProcess(os.Getpid())
	if !ok {
		fmt.Fprintln(e.stderr, "dtforward health: HTTP_ADDRESS is empty and no \"dtforward run\" process is running here; set HTTP_ADDRESS (or pass --address host:port) to ask /healthz")
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "dtforward run is alive (pid %d); HTTP_ADDRESS is empty, so /healthz and /readyz were not asked\n", pid)
	return exitOK
}

// procRoot is where process command lines are read; tests point it at a tree of their own.
var procRoot = "/proc"

// findRunProcess returns the lowest pid, other than self, whose command line is
// "…/dtforward [flags] run …", reading /proc (Linux; elsewhere nothing is found).
func findRunProcess(self int) (int, bool) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, false
	}
	best := 0
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(procRoot, ent.Name(), "cmdline"))
		if err != nil || !isRunCommand(cmdline) {
			continue
		}
		if best == 0 || pid < best {
			best = pid
		}
	}
	return best, best != 0
}

// isRunCommand reports whether a NUL-separated command line runs "dtforward run".
func isRunCommand(cmdline []byte) bool {
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	if len(args) < 2 || filepath.Base(string(args[0])) != "dtforward" {
		return false
	}
	for _, a := range args[1:] {
		if len(a) > 0 && a[0] == '-' {
			continue
		}
		return string(a) == "run"
	}
	return false
}
