package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

func TestIsRunCommand(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"/dtforward\x00run\x00":                     true,
		"/usr/local/bin/dtforward\x00run":           true,
		"dtforward\x00--verbose\x00run\x00":         true,
		"/dtforward\x00health\x00":                  false,
		"/dtforward\x00":                            false,
		"/usr/bin/sleep\x00run\x00":                 false,
		"/tmp/dtforward.test\x00run\x00":            false,
		"/dtforward\x00backfill\x00run\x00":         false,
		"":                                          false,
		"/bin/sh\x00-c\x00/dtforward run\x00":       false,
		"/opt/dtforward/dtforward\x00run\x00-x\x00": true,
	} {
		if got := isRunCommand([]byte(cmdline)); got != want {
			t.Errorf("isRunCommand(%q) = %v, want %v", cmdline, got, want)
		}
	}
}

// TestHealthWithoutHTTPAddress: the container HEALTHCHECK runs "dtforward health"; with
// HTTP_ADDRESS set empty it marked a healthy container unhealthy. It now reports the real
// "dtforward run" process alive, and unhealthy once that process is gone.
func TestHealthWithoutHTTPAddress(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{HistoryCount: 5})
	dir := t.TempDir()
	vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	vars["HTTP_ADDRESS"] = ""
	cmd := exec.Command(bin, "run")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()

	health := func() (int, string) {
		h := exec.Command(bin, "health")
		h.Env = []string{"HTTP_ADDRESS="}
		out, _ := h.CombinedOutput()
		return h.ProcessState.ExitCode(), string(out)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	waitUntil(t, 10*time.Second, "health to see the daemon", func() bool {
		code, out := health()
		return code == exitOK && strings.Contains(out, "dtforward run is alive")
	})
	// Only this test's daemon is certain to be there; name it when it is the only one.
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("the daemon is not in /proc: %v", err)
	}
	_ = cmd.Process.Kill()
	<-exited
	// Other test packages may run a dtforward daemon meanwhile; look at a tree holding only
	// what this test knows.
	defer func(old string) { procRoot = old }(procRoot)
	procRoot = t.TempDir()
	code, _, stderr := runCmd(t, context.Background(), map[string]string{"HTTP_ADDRESS": ""}, "health")
	if code != exitFailure || !strings.Contains(stderr, "no \"dtforward run\" process") {
		t.Fatalf("health with no daemon: exit %d, stderr %q; want %d naming the missing process", code, stderr, exitFailure)
	}
}
