package repocheck

import (
	"regexp"
	"strings"
	"testing"
)

// TestCIRunsREADMETestCommands: .ci/run says it runs "the test commands from README.md"; each
// test command of the README's first block (the lines running go test, such as the nested
// module test/otlpcollector's) must be a line of .ci/run, or CI silently skips a module.
func TestCIRunsREADMETestCommands(t *testing.T) {
	readme := read(t, "README.md")
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(readme)
	if block == nil {
		t.Fatal("README.md has no sh block")
	}
	ci := read(t, ".ci/run")
	n := 0
	for _, line := range strings.Split(block[1], "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(cmd)
		if !strings.Contains(cmd, "go test") {
			continue
		}
		n++
		// .ci/run may add to a command (vet before a nested module's tests), not change it.
		core := cmd
		if inner, ok := strings.CutPrefix(cmd, "("); ok {
			dir, rest, _ := strings.Cut(strings.TrimSuffix(inner, ")"), " && ")
			if !strings.Contains(ci, "("+dir+" && ") {
				t.Errorf(".ci/run does not enter %q as README's test command does: %s", strings.TrimPrefix(dir, "cd "), cmd)
			}
			core = rest
		}
		if !strings.Contains(ci, core) {
			t.Errorf(".ci/run does not run README's test command %q", cmd)
		}
	}
	if n < 2 {
		t.Errorf("found %d test commands in README's first block, want the suite and test/otlpcollector's", n)
	}
}
