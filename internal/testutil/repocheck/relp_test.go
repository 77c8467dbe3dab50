package repocheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
	"github.com/dtforward/dtforward/sink"
)

// TestREADMERELPRecipe runs the README's rsyslog imrelp configuration (port and paths moved
// into a temp dir) and delivers through the relp sink into it.
func TestREADMERELPRecipe(t *testing.T) {
	readme := read(t, "README.md")
	const intro = "rsyslog receiver (Debian: `apt install rsyslog-relp`):\n\n```text\n"
	i := strings.Index(readme, intro)
	if i < 0 {
		t.Fatal("README has no RELP recipe for rsyslog")
	}
	conf, _, ok := strings.Cut(readme[i+len(intro):], "```")
	if !ok {
		t.Fatal("the RELP recipe's code block does not end")
	}
	rs := testtools.FindRsyslog(t)
	dir := t.TempDir()
	port := freePort(t)
	conf = `global(workDirectory="` + dir + `")` + "\n" + strings.NewReplacer(
		`port="2514"`, `address="127.0.0.1" port="`+port+`"`,
		"/var/log/darktrace.log", filepath.Join(dir, "darktrace.log"),
	).Replace(conf)
	if !strings.Contains(conf, port) || !strings.Contains(conf, dir+"/darktrace.log") {
		t.Fatalf("the recipe no longer has port 2514 and /var/log/darktrace.log:\n%s", conf)
	}
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rs.Bin, "-n", "-f", path, "-M", rs.ModDir, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Env = rs.Env()
	start(t, cmd)
	waitListening(t, "127.0.0.1:"+port)

	s, err := sink.New(sink.Config{Transport: "relp", Address: "127.0.0.1:" + port, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := []sink.Message{{Kind: "modelbreach", Line: []byte("CEF:0|Darktrace|DCIP|6|1|one|5|")},
		{Kind: "modelbreach", Line: []byte("CEF:0|Darktrace|DCIP|6|2|two|5|")}}
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatalf("relp sink into the README's rsyslog: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "darktrace.log"))
		if strings.Contains(string(b), "|one|") && strings.Contains(string(b), "|two|") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the README's rsyslog wrote %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
