package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the configuration table in ../README.md from Table()")

const (
	tableBegin = "<!-- config-table:begin -->"
	tableEnd   = "<!-- config-table:end -->"
)

// markdownTable renders Table() as the README's configuration reference.
func markdownTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Meaning |\n|---|---|---|\n")
	cell := strings.NewReplacer("|", `\|`, "\n", " ")
	for _, v := range Table() {
		def := "—"
		if v.Default != "" {
			def = "`" + cell.Replace(v.Default) + "`"
		}
		b.WriteString("| `" + v.Name + "` | " + def + " | " + cell.Replace(v.Description) + " |\n")
	}
	return b.String()
}

// TestREADMEConfigTable keeps the README's configuration reference equal to the struct tags.
// Run "go test ./config -run TestREADMEConfigTable -update" after changing a variable.
func TestREADMEConfigTable(t *testing.T) {
	const path = "../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i, j := strings.Index(readme, tableBegin), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %s … %s markers", path, tableBegin, tableEnd)
	}
	want := "\n" + markdownTable()
	got := readme[i+len(tableBegin) : j]
	if got == want {
		return
	}
	if *update {
		readme = readme[:i+len(tableBegin)] + want + readme[j:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", path)
		return
	}
	t.Errorf("README.md configuration table is out of date; run: go test ./config -run TestREADMEConfigTable -update\n got:\n%s\nwant:\n%s", got, want)
}
