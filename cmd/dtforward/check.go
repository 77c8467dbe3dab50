package main

import (
	"context"
	"fmt"
)

// runCheck is not built yet; it is owned by the issue that delivers the "check" command.
func runCheck(_ context.Context, e *env) int {
	fmt.Fprintln(e.stderr, "dtforward check: not implemented yet")
	return exitFailure
}
