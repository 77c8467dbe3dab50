package parsecheck

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"testing"
)

func run(t testing.TB, ctx context.Context, bin string, stdin io.Reader, args ...string) []byte {
	t.Helper()
	return runCmd(t, ctx, bin, args, nil, stdin)
}

// runCmd runs a tool to completion and fails the test with its stderr when it fails.
func runCmd(t testing.TB, ctx context.Context, bin string, args, env []string, stdin io.Reader) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
	}
	return stdout.Bytes()
}
