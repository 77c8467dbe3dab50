package main

import (
	"context"
	"fmt"
)

// runFormat is not built yet; it is owned by the issue that delivers the "format" command.
func runFormat(_ context.Context, e *env) int {
	fmt.Fprintln(e.stderr, "dtforward format: not implemented yet")
	return exitFailure
}
