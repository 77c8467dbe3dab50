package sink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dtforward/dtforward/sink"
)

// fsizeChildEnv runs TestFileSinkOnFullVolume's child: the file size limit is per process, so
// the writes that hit it run in a process of their own.
const fsizeChildEnv = "DTFORWARD_TEST_FSIZE_FILE"

// fileBatch returns n lines of 100 bytes, tagged with its name so that every line is unique.
func fileBatch(name string, n int) []sink.Message {
	msgs := make([]sink.Message, n)
	for i := range msgs {
		line := fmt.Sprintf(`{"batch":"%s","n":%03d,"pad":"`, name, i)
		line += strings.Repeat("x", 98-len(line)) + `"}`
		msgs[i] = sink.Message{Kind: "modelbreach", Line: []byte(line)}
	}
	return msgs
}

// TestFileSinkOnFullVolume: the volume fills in the middle of a batch (here: the kernel's
// file size limit, RLIMIT_FSIZE, which makes write(2) short and then fail with EFBIG exactly
// as a full volume does, without needing to mount one). Send fails; once there is room again,
// the retried batch follows the last complete line: no fragment is left in the file, every
// line is whole and each appears once. Before: the fragment stayed and the retried batch's
// first line was glued to it.
func TestFileSinkOnFullVolume(t *testing.T) {
	if path := os.Getenv(fsizeChildEnv); path != "" {
		fullVolumeChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "alerts.log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileSinkOnFullVolume$", "-test.count=1")
	cmd.Env = append(os.Environ(), fsizeChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("child: ")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
	if !bytes.Contains(out, []byte("child: full: ")) {
		t.Fatalf("the second batch did not hit the limit:\n%s", out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := lines(append(fileBatch("a", 30), fileBatch("b", 30)...))
	got := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") || !bytes.HasSuffix(raw, []byte("\n")) {
		for i, l := range got {
			if i >= len(want) || l != want[i] {
				t.Errorf("line %d = %q (%d bytes)", i+1, l, len(l))
			}
		}
		t.Fatalf("file has %d lines, want the %d lines of both batches, each whole and once", len(got), len(want))
	}
}

// fullVolumeChild writes batch a (3,030 bytes), then batch b with a 4,096-byte file size limit
// (it fails part-way), then b again without the limit. It prints what happened.
func fullVolumeChild(path string) {
	signal.Ignore(syscall.SIGXFSZ) // write(2) then returns EFBIG instead of killing us
	s, err := sink.New(sink.Config{Transport: "file", Address: path})
	if err != nil {
		fmt.Println("child: open:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	if err := s.Send(ctx, fileBatch("a", 30)); err != nil {
		fmt.Println("child: batch a:", err)
		os.Exit(1)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		fmt.Println("child: getrlimit:", err)
		os.Exit(1)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 4096, Max: old.Max}); err != nil {
		fmt.Println("child: setrlimit:", err)
		os.Exit(1)
	}
	err = s.Send(ctx, fileBatch("b", 30))
	if err == nil || !errors.Is(err, syscall.EFBIG) {
		fmt.Println("child: batch b did not fail with EFBIG:", err)
		os.Exit(1)
	}
	fmt.Println("child: full:", err)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		fmt.Println("child: setrlimit:", err)
		os.Exit(1)
	}
	if err := s.Send(ctx, fileBatch("b", 30)); err != nil {
		fmt.Println("child: batch b again:", err)
		os.Exit(1)
	}
	_ = s.Close()
	fmt.Println("child: done")
	os.Exit(0)
}
