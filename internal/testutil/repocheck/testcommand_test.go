package repocheck

import (
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCIRunsREADMETestCommand: a newcomer gets two commands in README's first block, the demo
// and the tests; .ci/run must run that very test command, and the command must test every Go
// module of the repository (test/otlpcollector is one of its own), or CI silently skips one.
func TestCIRunsREADMETestCommand(t *testing.T) {
	readme := read(t, "README.md")
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(readme)
	if block == nil {
		t.Fatal("README.md has no sh block")
	}
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(block[1]), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	if len(cmds) != 2 || cmds[1] != "scripts/test" {
		t.Fatalf("README's first block holds %q, want two commands: the demo, then scripts/test", cmds)
	}
	ci := read(t, ".ci/run")
	if !regexp.MustCompile(`(?m)^scripts/test$`).MatchString(ci) {
		t.Error(".ci/run does not run README's test command scripts/test")
	}

	script := read(t, "scripts/test")
	var mods []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" {
			rel, _ := filepath.Rel(root, p)
			mods = append(mods, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 2 {
		t.Fatalf("found Go modules %q, want the project and test/otlpcollector", mods)
	}
	for _, mod := range mods {
		dir := path.Dir(mod)
		want := "go test"
		if dir != "." {
			want = "(cd " + dir + " && go test"
		}
		if !strings.Contains(script, want) {
			t.Errorf("scripts/test does not test the module in %s (no %q)", dir, want)
		}
	}
}
