package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

// TestDemoOnATerminal runs the real binary on a pseudo-terminal, as a newcomer types
// "dtforward demo": the screen shows a one-line banner and CEF lines, not JSON log lines.
// (Off a terminal, TestDemoPrintsCEF holds stdout to bare CEF lines.)
func TestDemoOnATerminal(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "demo", "--interval", "1s", "--rate", "5")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TERM=dumb"}
	tty, err := pty.Start(cmd) // stdin, stdout and stderr on the terminal
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var screen testtools.SyncBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 32<<10)
		for {
			n, err := tty.Read(buf)
			_, _ = screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(screen.String(), "CEF:0|Darktrace|DCIP|") < 20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("demo after Ctrl-C: %v, want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-waited
		t.Error("demo did not stop within 15s of Ctrl-C")
	}
	tty.Close()
	<-copied

	out := strings.ReplaceAll(screen.String(), "\r\n", "\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if n := strings.Count(out, "CEF:0|Darktrace|DCIP|"); n < 20 {
		t.Fatalf("%d CEF lines on the terminal within 30s, want 20:\n%s", n, tail(out, 2000))
	}
	if !strings.HasPrefix(lines[0], "dtforward demo: simulated appliance at https://127.0.0.1:") ||
		!strings.Contains(lines[0], "only warnings are logged (LOG_LEVEL=info shows every poll)") {
		t.Errorf("first line %q, want the banner saying only warnings are logged", lines[0])
	}
	for i, l := range lines[1:] {
		if l != "" && !strings.HasPrefix(l, "CEF:0|Darktrace|DCIP|") && !strings.HasPrefix(l, "^C") {
			t.Errorf("terminal line %d is neither CEF nor the banner: %q", i+2, l)
		}
	}
}
