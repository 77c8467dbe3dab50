package main

import (
	"context"
	"fmt"
)

// runRun is not built yet; it is owned by the issue that delivers the "run" command.
func runRun(_ context.Context, e *env) int {
	fmt.Fprintln(e.stderr, "dtforward run: not implemented yet")
	return exitFailure
}
