package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNotAnAppliance runs the real binary's check against a web server that is not a
// Darktrace appliance (it answers every path with an HTML 404 page, as Python's http.server
// does): the failure says so and what to check, not only "HTTP 404".
func TestCheckNotAnAppliance(t *testing.T) {
	bin := buildBinary(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<!DOCTYPE HTML>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Error response</title></head>\n" +
			"<body><h1>Error response</h1><p>Error code: 404</p><p>Message: File not found.</p></body>\n</html>\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	vars := baseVars(srv.URL, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	code, out := runBinary(t, bin, vars, "check", "--timeout", "10s")
	if code != exitFailure || !strings.Contains(out, "this is not a Darktrace appliance API; check DARKTRACE_URL") {
		t.Errorf("check against a plain web server: exit %d, want 1 saying it is not a Darktrace appliance:\n%s", code, out)
	}
}
