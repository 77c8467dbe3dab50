package sink_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dtforward/dtforward/sink"
)

func TestStdout(t *testing.T) {
	var out bytes.Buffer
	var sent, sanitized int
	s, err := sink.New(sink.Config{Transport: "stdout", Stdout: &out, Hooks: sink.Hooks{
		Sent:      func(m, _ int) { sent += m },
		Sanitized: func(m int) { sanitized += m },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := []sink.Message{
		{Severity: 9, Kind: "modelbreach", Line: []byte("CEF:0|Darktrace|DCIP|6|1|a|9|msg=x")},
		{Severity: 1, Kind: "antigena", Line: []byte("line with\nnewline")},
	}
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	want := "CEF:0|Darktrace|DCIP|6|1|a|9|msg=x\nline with newline\n"
	if out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	if sent != 2 || sanitized != 1 {
		t.Errorf("hooks: sent=%d sanitized=%d, want 2, 1", sent, sanitized)
	}
}

func TestFileAppendAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.log")
	if err := os.WriteFile(path, []byte("existing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sink.New(sink.Config{Transport: "file", Address: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	send := func(line string) {
		t.Helper()
		if err := s.Send(ctx, []sink.Message{{Kind: "modelbreach", Line: []byte(line)}}); err != nil {
			t.Fatal(err)
		}
	}
	send("one")
	// logrotate: rename, then SIGHUP -> Reopen.
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	send("two") // still goes to the renamed file: it is the open one
	r, ok := s.(sink.Reopener)
	if !ok {
		t.Fatal("file sink does not implement Reopener")
	}
	if err := r.Reopen(); err != nil {
		t.Fatal(err)
	}
	send("three")
	check := func(p, want string) {
		t.Helper()
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", filepath.Base(p), got, want)
		}
	}
	check(rotated, "existing\none\ntwo\n")
	check(path, "three\n")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		t.Errorf("new file mode %v is world-accessible", st.Mode().Perm())
	}
}

func TestFileWithHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	s, err := sink.New(sink.Config{Transport: "file", Address: path, Header: sink.HeaderRFC5424, Hostname: "h", Framing: sink.FramingOctet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), []sink.Message{{Severity: 10, Kind: "aianalyst", Line: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	// "<162>1 " + 27-byte timestamp + " h dtforward PID aianalyst - {}"
	if !bytes.Contains(got, []byte(" h dtforward ")) || !bytes.HasSuffix(got, []byte(" aianalyst - {}")) || !bytes.Contains(got, []byte(" <162>1 ")) {
		t.Errorf("file = %q", got)
	}
	if err := s.Send(context.Background(), nil); err == nil {
		t.Error("Send after Close: no error")
	}
}
