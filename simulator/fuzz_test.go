package simulator

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// FuzzServeHTTP feeds arbitrary paths, queries and DTAPI headers through the handler: it must
// never panic, and only a correctly signed request may get past authentication.
func FuzzServeHTTP(f *testing.F) {
	s, err := New(Options{PublicToken: testPub, PrivateToken: testPriv, Seed: 1, HistoryCount: 20,
		Now: func() time.Time { return base }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Add("/modelbreaches", "starttime=1&endtime=2", "20260115T120000", false)
	f.Add("/modelbreaches", "pbid=3&historicmodelonly=true", "2026-01-15 12:00:00", true)
	f.Add("/antigena", "includecleared=true&includehistory=true&fulldevicedetails=true", "2026-01-15T12:00:00Z", true)
	f.Add("/aianalyst/incidentevents", "minscore=%zz&uuid=", "2026-01-15T12:00:00+00:00", true)
	f.Add("/status", "a=%41&&=&b", "x", true)
	f.Add("/modelbreaches", "minscore=NaN&starttime=-9223372036854775808", "20260115T120000", true)
	f.Fuzz(func(t *testing.T, path, query, date string, sign bool) {
		u := "http://127.0.0.1" + path
		if query != "" {
			u += "?" + query
		}
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil || req.URL.Path != path {
			return // not a request a client could send
		}
		sig := "0000000000000000000000000000000000000000"
		if sign {
			p, ok := signedPath(req)
			if !ok {
				return
			}
			sig = darktrace.Signature(testPriv, testPub, p, date)
		}
		req.Header.Set("DTAPI-Token", testPub)
		req.Header.Set("DTAPI-Date", date)
		req.Header.Set("DTAPI-Signature", sig)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
			if !sign {
				t.Fatalf("unsigned request %s?%s got 200", path, query)
			}
		case http.StatusBadRequest, http.StatusFound:
		default:
			t.Fatalf("status %d for %s?%s", w.Code, path, query)
		}
	})
}
