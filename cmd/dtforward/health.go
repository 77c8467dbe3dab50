package main

import (
	"context"
	"fmt"
)

// runHealth is not built yet; it is owned by the issue that delivers the "health" command.
func runHealth(_ context.Context, e *env) int {
	fmt.Fprintln(e.stderr, "dtforward health: not implemented yet")
	return exitFailure
}
