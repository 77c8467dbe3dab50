package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// clearProcessEnv unsets every variable of Table for the test (t.Setenv restores them).
func clearProcessEnv(t *testing.T) {
	t.Helper()
	for _, v := range Table() {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
}

// TestFromProcessDecodesWithEnvconfig loads the real process environment through
// envconfig.Process and checks it agrees with the injected-environment loader.
func TestFromProcessDecodesWithEnvconfig(t *testing.T) {
	clearProcessEnv(t)
	vars := map[string]string{
		"DARKTRACE_URL":           "https://dt.example",
		"DARKTRACE_PUBLIC_TOKEN":  "pub123",
		"DARKTRACE_PRIVATE_TOKEN": "priv456",
		"POLL_SOURCES":            "modelbreaches, aianalyst",
		"POLL_INTERVAL":           "", // empty counts as unset: the default applies
		"SIEM_TRANSPORT":          "tcp",
		"SIEM_ADDRESS":            "127.0.0.1:514",
		"SIEM_MAX_MESSAGE_BYTES":  "4096",
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	got, err := FromProcess(ModeRun)
	if err != nil {
		t.Fatalf("FromProcess: %v", err)
	}
	want, err := loadFor(ModeRun, vars)
	if err != nil {
		t.Fatalf("LoadFor: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromProcess and LoadFor disagree:\n  FromProcess %+v\n  LoadFor     %+v", got, want)
	}
	if got.PollInterval.String() != "1m0s" || len(got.PollSources) != 2 || got.PollSources[1] != "aianalyst" ||
		got.SIEMMaxMessageBytes != 4096 || got.DarktracePrivateToken.Value() != "priv456" {
		t.Errorf("values not decoded from the process environment: %+v", got)
	}
}

// TestFromProcessReportsEveryProblem: envconfig stops at the first bad value, FromProcess
// must still name every variable that is wrong.
func TestFromProcessReportsEveryProblem(t *testing.T) {
	clearProcessEnv(t)
	t.Setenv("POLL_INTERVAL", "5")
	t.Setenv("SIEM_TIMEOUT", "soon")
	t.Setenv("SIEM_FRAMING", "octets")
	_, err := FromProcess(ModeRun)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("FromProcess error = %v, want *Error", err)
	}
	for _, name := range []string{"POLL_INTERVAL", "SIEM_TIMEOUT", "SIEM_FRAMING", "DARKTRACE_URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}
