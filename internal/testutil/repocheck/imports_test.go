package repocheck

import (
	"bufio"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/dtforward/dtforward"

// supportPrefixes are the trees that hold test and benchmark support. The binary must never
// link them: they start daemons, read testdata and skip tests, none of which belongs in
// production. sink/sinktest sits beside the sinks it serves (as net/http/httptest does), so
// that internal/ imports nothing above it.
var supportPrefixes = []string{module + "/internal/testutil", module + "/bench", module + "/sink/sinktest"}

func isSupport(pkg string) bool {
	for _, p := range supportPrefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// supportImports reads `go list -deps -f '{{.ImportPath}} {{join .Imports " "}}'` output (the
// non-test imports of each package) and returns "importer -> imported" for every production
// package of the module that imports a test or bench support package.
func supportImports(listing string) []string {
	var bad []string
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg := fields[0]
		inModule := pkg == module || strings.HasPrefix(pkg, module+"/")
		if !inModule || isSupport(pkg) {
			continue
		}
		for _, imp := range fields[1:] {
			if isSupport(imp) {
				bad = append(bad, pkg+" -> "+imp)
			}
		}
	}
	return bad
}

// TestProductionImportsNoTestSupport walks the non-test dependencies of every production
// package of the module (everything but internal/testutil/... and bench/...) and fails if one
// of them imports test or bench support.
func TestProductionImportsNoTestSupport(t *testing.T) {
	all, err := goList(t, "-f", "{{.ImportPath}}", "./...")
	if err != nil {
		t.Fatal(err)
	}
	var prod []string
	for _, p := range strings.Fields(all) {
		if !isSupport(p) {
			prod = append(prod, p)
		}
	}
	if len(prod) < 10 || !slices.Contains(prod, module+"/cmd/dtforward") {
		t.Fatalf("go list ./... found %d production packages (%v): the check would be empty", len(prod), prod)
	}
	args := append([]string{"-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`}, prod...)
	deps, err := goList(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(deps, module+"/sink ") {
		t.Fatalf("go list -deps does not list the sink package: the check would be empty:\n%s", deps)
	}
	for _, b := range supportImports(deps) {
		t.Errorf("production package imports test or bench support: %s", b)
	}
}

// TestSupportImportsFindsABadImport: the checker above can fail.
func TestSupportImportsFindsABadImport(t *testing.T) {
	listing := module + "/sink fmt " + module + "/internal/metrics\n" +
		module + "/route " + module + "/sink " + module + "/internal/testutil/syslogd\n" +
		module + "/internal/testutil/syslogd " + module + "/internal/testutil/testtools\n" +
		module + "/bench/poll-latency " + module + "/bench/internal/benchkit\n" +
		module + "/simulator " + module + "/bench/internal/benchkit\n" +
		"fmt errors\n"
	got := supportImports(listing)
	want := []string{
		module + "/route -> " + module + "/internal/testutil/syslogd",
		module + "/simulator -> " + module + "/bench/internal/benchkit",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("supportImports = %q, want %q", got, want)
	}
}

func goList(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
	}
	return string(out), err
}
