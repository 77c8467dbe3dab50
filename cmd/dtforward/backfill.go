package main

import (
	"context"
	"fmt"
)

// runBackfill is not built yet; it is owned by the issue that delivers the "backfill" command.
func runBackfill(_ context.Context, e *env) int {
	fmt.Fprintln(e.stderr, "dtforward backfill: not implemented yet")
	return exitFailure
}
