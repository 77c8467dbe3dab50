package repocheck

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // upper-case keyword
	args string
	line int
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from  string // image reference
	name  string // AS name
	instr []instruction
}

func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var stages []stage
	sc := bufio.NewScanner(strings.NewReader(text))
	var cur strings.Builder
	start := 0
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment lines inside a continuation are dropped, as Docker does
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		cur.Reset()
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
	}
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instr {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm parses a JSON-array argument; ok is false for shell form.
func execForm(args string) ([]string, bool) {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		return nil, false
	}
	return v, true
}

// buildRun returns the build stage's "go build" RUN command.
func buildRun(t *testing.T, stages []stage) string {
	t.Helper()
	for _, in := range stages[0].all("RUN") {
		if strings.Contains(in.args, "go build") {
			return in.args
		}
	}
	t.Fatal("the build stage has no RUN ... go build")
	return ""
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, read(t, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, have %d stage(s)", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if build.from != "golang:1.26" || build.name == "" {
		t.Errorf("build stage FROM %q AS %q, want golang:1.26 AS <name>", build.from, build.name)
	}
	if final.from != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %q, want gcr.io/distroless/static-debian12:nonroot", final.from)
	}

	run := buildRun(t, stages)
	for _, want := range []string{"CGO_ENABLED=0 go build", "-trimpath", "-s -w", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "./cmd/dtforward"} {
		if !strings.Contains(run, want) {
			t.Errorf("build command lacks %q: %s", want, run)
		}
	}
	m := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(run)
	if m == nil {
		t.Fatalf("build command has no -o: %s", run)
	}
	binary := m[1]
	for _, arg := range []string{"VERSION", "COMMIT"} {
		declared := slices.ContainsFunc(build.all("ARG"), func(in instruction) bool { return strings.HasPrefix(in.args, arg) })
		if !declared {
			t.Errorf("build stage does not declare ARG %s, so ${%s} would be empty", arg, arg)
		}
	}

	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("final stage has no USER")
	}
	user := users[len(users)-1].args
	uid, gid, ok := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 || !ok {
		t.Errorf("USER %q, want a numeric non-root uid:gid (Kubernetes runAsNonRoot cannot check names)", user)
	} else if _, err := strconv.Atoi(gid); err != nil {
		t.Errorf("USER %q: group is not numeric", user)
	}

	one := func(cmd string) []string {
		ins := final.all(cmd)
		if len(ins) != 1 {
			t.Fatalf("final stage has %d %s instructions, want 1", len(ins), cmd)
		}
		args := ins[0].args
		if cmd == "HEALTHCHECK" {
			_, args, _ = strings.Cut(args, "CMD ")
		}
		v, ok := execForm(args)
		if !ok {
			t.Fatalf("%s %s is in shell form; the distroless image has no shell", cmd, ins[0].args)
		}
		return v
	}
	if got := one("ENTRYPOINT"); !slices.Equal(got, []string{binary}) {
		t.Errorf("ENTRYPOINT %q, want [%q] (the built binary)", got, binary)
	}
	if got := one("CMD"); !slices.Equal(got, []string{"run"}) {
		t.Errorf("CMD %q, want [\"run\"]", got)
	}
	if got := one("HEALTHCHECK"); !slices.Equal(got, []string{binary, "health"}) {
		t.Errorf("HEALTHCHECK CMD %q, want [%q, \"health\"]", got, binary)
	}

	finalText := ""
	for _, in := range final.instr {
		finalText += in.cmd + " " + in.args + "\n"
	}
	for _, want := range []string{
		"COPY --from=" + build.name + " " + binary + " " + binary,
		"COPY --from=" + build.name + " --chown=" + user + " ",
		"STATE_DIR=/var/lib/dtforward",
		"VOLUME /var/lib/dtforward",
		"HTTP_ADDRESS=:", // "health" asks /healthz on HTTP_ADDRESS: it must be on by default
		"org.opencontainers.image.source=",
		"org.opencontainers.image.version=",
		"org.opencontainers.image.revision=",
		"org.opencontainers.image.licenses=\"Apache-2.0\"",
	} {
		if !strings.Contains(finalText, want) {
			t.Errorf("final stage lacks %q", want)
		}
	}
}

// dockerignore is a .dockerignore matcher with Docker's rules for the patterns used here:
// paths relative to the context root, "*" and "?" within one path element, "**" across
// elements, a match on a directory excludes everything below it, "!" re-includes, last match
// wins.
type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

func parseDockerignore(text string) dockerignore {
	var d dockerignore
	for _, line := range strings.Split(text, "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("(/.*)?$")
		d = append(d, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), neg})
	}
	return d
}

func (d dockerignore) ignored(rel string) bool {
	out := false
	for _, p := range d {
		if p.re.MatchString(rel) {
			out = !p.negate
		}
	}
	return out
}

func TestDockerignoreMatcher(t *testing.T) {
	d := parseDockerignore(read(t, ".dockerignore"))
	tests := []struct {
		path string
		want bool
	}{
		{".git/HEAD", true},
		{"README.md", true},
		{"config/config_test.go", true},
		{"config/config.go", false},
		{"go.mod", false},
		{"go.sum", false},
		{"cmd/dtforward/main.go", false},
		{"deploy/docker-compose.yml", true},
		{"internal/testutil/syslogd/syslogd.go", true},
		{"internal/metrics/metrics.go", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if got := d.ignored(tc.path); got != tc.want {
				t.Errorf("ignored(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

// TestDockerBuildCommand runs the Dockerfile's own go build command on the build context the
// .dockerignore leaves, with the version and commit injected as "docker build --build-arg"
// would, and checks that the binary reports them.
func TestDockerBuildCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	run := buildRun(t, parseDockerfile(t, read(t, "Dockerfile")))
	ctx := t.TempDir()
	ignore := parseDockerignore(read(t, ".dockerignore"))
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if ignore.ignored(rel) || (e.IsDir() && rel == ".git") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(ctx, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "dtforward")
	cmdline := regexp.MustCompile(`-o \S+`).ReplaceAllString(run, "-o "+bin)
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = ctx
	cmd.Env = append(os.Environ(), "VERSION=test", "COMMIT=abc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s\n%v\n%s", cmdline, err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("dtforward version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "dtforward test (commit abc") {
		t.Errorf("dtforward version = %q, want the injected version test and commit abc", out)
	}
	// -trimpath: no path of the build machine is in the binary.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), ctx) {
		t.Errorf("the binary contains the build directory %s; -trimpath is not in effect", ctx)
	}
}
