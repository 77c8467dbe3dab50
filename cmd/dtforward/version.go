package main

import (
	"context"
	"fmt"
	"runtime"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func runVersion(_ context.Context, e *env) int {
	fmt.Fprintf(e.stdout, "dtforward %s (commit %s, %s)\n", version, commit, runtime.Version())
	return exitOK
}
