// Package testtools locates the third-party daemons and parsers that tests run against
// (rsyslog, syslog-ng, lognormalizer), as installed by scripts/install-test-deps.
//
// A test that needs a missing tool is skipped on a developer machine, and fails when
// DTFORWARD_REQUIRE_TOOLS=1 (set by .ci/run), so CI can never pass by skipping.
package testtools

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Rsyslog is an rsyslogd binary and its module directory. LibDir is set when rsyslog was
// unpacked rather than installed: imrelp then needs the unpacked librelp on LD_LIBRARY_PATH.
type Rsyslog struct {
	Bin    string
	ModDir string
	LibDir string
}

// Env returns the environment to run rsyslogd with: os.Environ, plus LD_LIBRARY_PATH when
// it was unpacked.
func (r Rsyslog) Env() []string {
	env := os.Environ()
	if r.LibDir != "" {
		env = append(env, "LD_LIBRARY_PATH="+r.LibDir)
	}
	return env
}

// SyslogNG is a syslog-ng binary; ModDir and LibDir are set when it was unpacked rather than
// installed (then it needs --module-path and LD_LIBRARY_PATH).
type SyslogNG struct {
	Bin    string
	ModDir string
	LibDir string
}

func cacheRoot() string {
	if d := os.Getenv("DTFORWARD_TOOLS_DIR"); d != "" {
		return filepath.Join(d, "root")
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "dtforward-test-tools", "root")
}

func executable(p string) bool {
	st, err := os.Stat(p) //nolint:gosec // paths of test tools chosen by the developer
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// missing skips the test, or fails it when tools are required.
func missing(t testing.TB, what string) {
	t.Helper()
	msg := what + " not found; run scripts/install-test-deps (as root) first"
	if os.Getenv("DTFORWARD_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FindRsyslog returns rsyslogd, or skips/fails the test.
func FindRsyslog(t testing.TB) Rsyslog {
	t.Helper()
	if r, ok := LocateRsyslog(); ok {
		return r
	}
	missing(t, "rsyslogd")
	return Rsyslog{}
}

// LocateRsyslog finds rsyslogd outside a test (the bench programs): $RSYSLOGD, then the
// install-test-deps cache, then the system package.
func LocateRsyslog() (Rsyslog, bool) {
	cands := []Rsyslog{
		{os.Getenv("RSYSLOGD"), os.Getenv("RSYSLOG_MODDIR"), os.Getenv("RSYSLOG_LIBDIR")},
		{filepath.Join(cacheRoot(), "usr/sbin/rsyslogd"), filepath.Join(cacheRoot(), "usr/lib/x86_64-linux-gnu/rsyslog"), filepath.Join(cacheRoot(), "usr/lib/x86_64-linux-gnu")},
		{"/usr/sbin/rsyslogd", "/usr/lib/x86_64-linux-gnu/rsyslog", ""},
	}
	for _, c := range cands {
		if c.Bin != "" && executable(c.Bin) {
			if c.LibDir == "" && strings.HasPrefix(c.Bin, cacheRoot()+"/") {
				c.LibDir = filepath.Join(cacheRoot(), "usr/lib/x86_64-linux-gnu") // $RSYSLOGD from an older install-test-deps
			}
			return c, true
		}
	}
	return Rsyslog{}, false
}

// FindSyslogNG returns syslog-ng, or skips/fails the test.
func FindSyslogNG(t testing.TB) SyslogNG {
	t.Helper()
	root := cacheRoot()
	cands := []SyslogNG{
		{os.Getenv("SYSLOG_NG"), os.Getenv("SYSLOG_NG_MODDIR"), os.Getenv("SYSLOG_NG_LIBDIR")},
		{"/usr/sbin/syslog-ng", "", ""},
		{filepath.Join(root, "usr/sbin/syslog-ng"), filepath.Join(root, "usr/lib/syslog-ng/3.38"), filepath.Join(root, "usr/lib/syslog-ng")},
	}
	for _, c := range cands {
		if c.Bin != "" && executable(c.Bin) {
			return c
		}
	}
	missing(t, "syslog-ng")
	return SyslogNG{}
}

// Command returns an exec.Cmd running syslog-ng with args, set up for an unpacked install.
func (s SyslogNG) Command(args ...string) *exec.Cmd {
	if s.LibDir != "" {
		args = append([]string{"--module-path", s.ModDir}, args...)
	}
	cmd := exec.Command(s.Bin, args...)
	if s.LibDir != "" {
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+s.LibDir)
	}
	return cmd
}

// FindCommand returns the path of a command from a Debian package that install-test-deps
// installs (e.g. systemd-analyze from systemd), or skips/fails the test.
func FindCommand(t testing.TB, name, debianPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	missing(t, name+" (Debian package "+debianPackage+")")
	return ""
}

// FindLognormalizer returns the lognormalizer binary (liblognorm-utils), or skips/fails.
func FindLognormalizer(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LOGNORMALIZER"); p != "" && executable(p) {
		return p
	}
	if p, err := exec.LookPath("lognormalizer"); err == nil {
		return p
	}
	missing(t, "lognormalizer")
	return ""
}

// SyncBuffer collects a command's or subprocess's output while a test reads it concurrently.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
