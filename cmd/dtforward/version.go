package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func runVersion(_ context.Context, e *env) int {
	fs := newFlags(e, "version", func(w io.Writer) {
		fmt.Fprint(w, "Usage: dtforward version\n\nPrints the version, commit and Go version (also: dtforward --version, dtforward -v).\n")
	})
	if code, ok := fs.parseNoArgs(""); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "dtforward %s (commit %s, %s)\n", version, commit, runtime.Version())
	return exitOK
}
