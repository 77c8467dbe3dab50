package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/parsecheck"
	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

// walkthroughSection is the README section a newcomer follows by hand.
const walkthroughSection = "## Try it against the simulator"

// readmeShellBlocks returns the ```sh blocks of one README section.
func readmeShellBlocks(t *testing.T, section string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "\n"+section+"\n")
	if i < 0 {
		t.Fatalf("README.md has no section %q", section)
	}
	body := readme[i+len(section)+2:]
	if j := strings.Index(body, "\n## "); j >= 0 {
		body = body[:j]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(body, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("README section %q has no ```sh block", section)
	}
	return blocks
}

// TestREADMEWalkthrough runs the shell lines of "Try it against the simulator" as written, in
// an empty directory with a clean environment, against the binary built from this tree: the
// simulator in the background, check, then run. It stops everything after run has forwarded
// live records, and has an independent CEF parser (liblognorm) read what run printed. Two
// substitutions only, both visible here: the "go build" line copies the test's binary (built
// the same way) instead of compiling again, and the simulator's port 8443 becomes a free one so
// parallel test runs cannot collide.
func TestREADMEWalkthrough(t *testing.T) {
	bin := buildBinary(t)
	testtools.FindLognormalizer(t) // before starting anything: a missing parser skips (or fails in CI)
	dir := t.TempDir()
	port := freeAddr(t)[len("127.0.0.1:"):]

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	sawBuild, sawListen := false, false
	for _, block := range readmeShellBlocks(t, walkthroughSection) {
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			if strings.HasPrefix(line, "go build -o dtforward ./cmd/dtforward") {
				line = "cp " + bin + " ./dtforward"
				sawBuild = true
			}
			if strings.Contains(line, "127.0.0.1:8443") {
				line = strings.ReplaceAll(line, "127.0.0.1:8443", "127.0.0.1:"+port)
				sawListen = true
			}
			script.WriteString(line + "\n")
		}
	}
	if !sawBuild || !sawListen {
		t.Fatalf("the walkthrough no longer has the build line (%v) or the --listen 127.0.0.1:8443 address (%v) this test adapts:\n%s", sawBuild, sawListen, script.String())
	}
	for _, want := range []string{"simulate --tls", "DARKTRACE_CA_FILE", "./dtforward check", "./dtforward run"} {
		if !strings.Contains(script.String(), want) {
			t.Fatalf("the walkthrough lacks %q:\n%s", want, script.String())
		}
	}

	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	// A newcomer's shell: no DARKTRACE_*, SIEM_*, POLL_* or LOG_* from the test's environment.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	var stdout, stderr testtools.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so the background simulator is stopped with everything else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopAll := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			stopAll()
		}
	})

	// run prints the history, then the simulator's one new breach a second every 5 s poll:
	// wait for a second info "poll" line of modelbreaches (quiet polls log at debug, so it
	// forwarded live breaches).
	livePolls := func() int {
		n := 0
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, `"source":"modelbreaches"`) && strings.Contains(l, `"message":"poll"`) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for livePolls() < 2 {
		select {
		case err := <-done:
			t.Fatalf("the walkthrough ended early (%v)\nstdout:\n%s\nstderr:\n%s", err, tail(stdout.String(), 3000), tail(stderr.String(), 3000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("run forwarded no second poll within 60s\nstdout:\n%s\nstderr:\n%s", tail(stdout.String(), 3000), tail(stderr.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopAll()
	if _, err := os.Stat(filepath.Join(dir, "state")); err != nil {
		t.Errorf("run kept no checkpoint in ./state as the README says: %v", err)
	}

	// stdout: simulator.env (cat), check's report ending with its sample line, then run's lines.
	out := stdout.String()
	for _, want := range []string{"DARKTRACE_URL=https://127.0.0.1:" + port + "\n", "DARKTRACE_CA_FILE=", "configuration: ok\n",
		"modelbreaches: ok", "antigena: ok", "aianalyst: ok", "sink stdout: reachable\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("check reported a failure:\n%s", out)
	}
	const sample = "sample cef line (a built-in example breach, not appliance data):\n"
	i := strings.Index(out, sample)
	if i < 0 {
		t.Fatalf("no check sample line in stdout:\n%s", tail(out, 3000))
	}
	runOut := out[i+len(sample):]
	runOut = runOut[strings.IndexByte(runOut, '\n')+1:] // the sample line itself
	var lines [][]byte
	kinds := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(runOut))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if !bytes.HasPrefix(l, []byte("CEF:0|Darktrace|DCIP|")) {
			t.Fatalf("run printed a line that is not CEF: %q", l)
		}
		lines = append(lines, bytes.Clone(l))
	}
	if len(lines) < 50 {
		t.Fatalf("run printed %d CEF lines, want the last hour of history and more", len(lines))
	}
	for n, c := range parsecheck.ParseCEF(t, lines) {
		if c.Rejected {
			t.Fatalf("liblognorm rejected line %d: %s", n, lines[n])
		}
		if c.Ext["externalId"] == "" || c.Ext["cs4"] != "127.0.0.1_"+port {
			t.Errorf("line %d lacks externalId or the appliance label after parsing: %v", n, c.Ext)
		}
		switch {
		case strings.HasPrefix(c.SignatureID, "antigena:"):
			kinds["antigena"]++
		case strings.HasPrefix(c.SignatureID, "aianalyst:"):
			kinds["aianalyst"]++
		default:
			kinds["modelbreach"]++
		}
	}
	if kinds["modelbreach"] == 0 || kinds["antigena"] == 0 || kinds["aianalyst"] == 0 {
		t.Errorf("records by kind %v: want model breaches, Antigena actions and AI Analyst events", kinds)
	}
	t.Logf("walkthrough: %d CEF lines parsed (%v)", len(lines), kinds)
}
