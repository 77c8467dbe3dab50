package main

import (
	"context"
	"fmt"
)

// runSimulate is not built yet; it is owned by the issue that delivers the "simulate" command.
func runSimulate(_ context.Context, e *env) int {
	fmt.Fprintln(e.stderr, "dtforward simulate: not implemented yet")
	return exitFailure
}
