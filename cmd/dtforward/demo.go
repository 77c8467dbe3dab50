package main

import (
	"context"
	"fmt"
)

// runDemo is not built yet; it is owned by the issue that delivers the "demo" command.
func runDemo(_ context.Context, e *env) int {
	fmt.Fprintln(e.stderr, "dtforward demo: not implemented yet")
	return exitFailure
}
