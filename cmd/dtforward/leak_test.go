package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no command leaves goroutines behind (pollers, HTTP servers, the
// simulator, sinks).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
