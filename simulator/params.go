package simulator

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// params reads query parameters, remembering the first bad value.
type params struct {
	q   url.Values
	err error
}

func newParams(r *http.Request) *params {
	q, err := url.ParseQuery(r.URL.RawQuery)
	return &params{q: q, err: err}
}

func (p *params) fail(name, v, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("invalid value %q for %s: expected %s", v, name, want)
	}
}

func (p *params) bool(name string, def bool) bool {
	v := p.q.Get(name)
	switch strings.ToLower(v) {
	case "":
		return def
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	p.fail(name, v, "true or false")
	return def
}

// int returns the parameter and whether it was given.
func (p *params) int(name string) (int64, bool) {
	v := p.q.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.fail(name, v, "an integer")
		return 0, false
	}
	return n, true
}

func (p *params) float(name string, def, lo, hi float64) float64 {
	v := p.q.Get(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < lo || f > hi {
		p.fail(name, v, fmt.Sprintf("a number from %v to %v", lo, hi))
		return def
	}
	return f
}

// window returns the inclusive [starttime, endtime] in epoch ms; without them the window is
// the def period up to now.
func (p *params) window(now time.Time, def time.Duration) (start, end int64) {
	end = now.UnixMilli()
	if e, ok := p.int("endtime"); ok {
		end = e
	}
	start = end - int64(def/time.Millisecond)
	if st, ok := p.int("starttime"); ok {
		start = st
	}
	return start, end
}

// badRequest answers a bad parameter the way the appliance usually does.
func badRequest(w http.ResponseWriter, err error) {
	writeJSONError(w, http.StatusBadRequest, "error", err.Error())
}
