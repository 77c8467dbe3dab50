package simulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a failure mode. The string is the name used in fault specs.
type FaultKind string

// Fault kinds. Param (after "@" in a spec) is noted where a kind takes one.
const (
	FaultJSON500       FaultKind = "500"       // 500 with a JSON body
	FaultHTML500       FaultKind = "500html"   // 500 with an HTML body
	FaultBadGateway    FaultKind = "502"       // 502 with a proxy's HTML body
	FaultUnavailable   FaultKind = "503"       // 503 with a proxy's HTML body
	FaultRateLimit     FaultKind = "429"       // 429 with Retry-After: Param seconds (default 1)
	FaultHang          FaultKind = "hang"      // no answer until the client gives up or Close; Param bounds the wait, then answers normally
	FaultSlow          FaultKind = "slow"      // the normal body trickled in 512-byte pieces, Param apart (default 50ms)
	FaultTruncated     FaultKind = "truncated" // status 200, then the connection is cut half-way through the JSON (panics with http.ErrAbortHandler, net/http's abort)
	FaultInvalidJSON   FaultKind = "invalid"   // status 200 with a well-framed body that is not valid JSON
	FaultLoginPage     FaultKind = "loginpage" // status 200 with the HTML login page (what a redirect-following client sees)
	FaultSignature     FaultKind = "signature" // 400 API SIGNATURE ERROR although the request was signed correctly
	FaultDate          FaultKind = "date"      // 400 API DATE ERROR although the date was fine
	FaultForbidden     FaultKind = "forbidden" // 302 to /403 as for a token without permission
	FaultLoginRedirect FaultKind = "login"     // 302 to /login
	FaultReset         FaultKind = "reset"     // the TCP connection is reset before any answer
	FaultLarge         FaultKind = "large"     // Param (default 10000) synthetic records added to the response
	// FaultError200 and FaultResponseError answer 200 with an error object where records were
	// expected, as appliances sometimes do for bad parameters or internal trouble: a client
	// that reads them as "no records" and moves on loses data.
	FaultError200      FaultKind = "error200"      // 200 {"error": "…"}
	FaultResponseError FaultKind = "responseerror" // 200 {"response": "ERROR"}
	// FaultEmpty answers 200 with an empty list, as an appliance can while it restarts or
	// reindexes: a client that forgets what it knew on one empty answer re-sends it all.
	FaultEmpty FaultKind = "empty" // 200 []
	// FaultDeep puts one extra record (pbid/codeid/id 999999999) nested Param levels deep
	// (default 100000, beyond encoding/json's limit) at the head of a list answer: it must cost
	// that record only, never the records beside it.
	FaultDeep FaultKind = "deep"
)

// DeepRecordID is the id of FaultDeep's record.
const DeepRecordID = 999999999

var faultKinds = []FaultKind{FaultJSON500, FaultHTML500, FaultBadGateway, FaultUnavailable, FaultRateLimit,
	FaultHang, FaultSlow, FaultTruncated, FaultInvalidJSON, FaultLoginPage, FaultSignature, FaultDate,
	FaultForbidden, FaultLoginRedirect, FaultReset, FaultLarge, FaultError200, FaultResponseError, FaultEmpty,
	FaultDeep}

// faultAliases are extra spec names: "timeout" is what a client sees of a hang.
var faultAliases = map[string]FaultKind{"timeout": FaultHang}

// faultEndpoints are the names a fault (or a permission) may target.
var faultEndpoints = []string{"modelbreaches", "antigena", "antigena/summary", "aianalyst",
	"aianalyst/incidentevents", "status"}

// Fault injects one failure mode into matching authenticated requests.
type Fault struct {
	Endpoint    string    // "modelbreaches", "antigena" (also matches "antigena/summary"), "aianalyst", "status", …; "" = all
	Kind        FaultKind // one of the Fault* constants
	Probability float64   // chance per matching request, 0..1
	Count       int       // 0 = unlimited; n = at most n injections, then the fault is spent
	Param       string    // kind-specific: Retry-After seconds, hang bound, trickle delay, extra records
}

// FaultKinds lists the valid fault kinds, for help texts.
func FaultKinds() []FaultKind { return slices.Clone(faultKinds) }

// ParseFaults parses a fault spec, the language shared by SetFaults callers and
// "dtforward simulate --faults":
//
//	spec  = group *( ";" group )
//	group = [ endpoint ":" ] item *( "," item )
//	item  = kind [ "@" param ] [ "=" probability ] [ "*" count ]
//
// A missing probability means 1 (always). Examples:
//
//	modelbreaches:500=0.1,timeout=0.05;antigena:429=1
//	500*3                      the next three requests to any endpoint get a JSON 500
//	modelbreaches:slow@200ms   every breach response trickles, 200 ms per 512 bytes
//	aianalyst:large@20000=0.5  half the incident responses carry 20,000 extra events
//
// An empty spec gives no faults. Errors name the offending item and list what is allowed.
func ParseFaults(spec string) ([]Fault, error) {
	var out []Fault
	var errs []error
	for _, group := range strings.Split(spec, ";") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		endpoint := ""
		if ep, rest, ok := strings.Cut(group, ":"); ok {
			endpoint, group = strings.Trim(strings.TrimSpace(ep), "/"), rest
			if endpoint != "*" && !slices.Contains(faultEndpoints, endpoint) {
				errs = append(errs, fmt.Errorf("fault endpoint %q is not one of %s", endpoint, strings.Join(faultEndpoints, ", ")))
				continue
			}
			if endpoint == "*" {
				endpoint = ""
			}
		}
		for _, item := range strings.Split(group, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			f, err := parseFaultItem(item)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.Endpoint = endpoint
			out = append(out, f)
		}
	}
	return out, errors.Join(errs...)
}

func parseFaultItem(item string) (Fault, error) {
	f := Fault{Probability: 1}
	name := item
	i := strings.IndexAny(item, "@=*")
	if i >= 0 {
		name = item[:i]
	}
	if k, ok := faultAliases[name]; ok {
		f.Kind = k
	} else {
		f.Kind = FaultKind(name)
	}
	if !slices.Contains(faultKinds, f.Kind) {
		names := make([]string, 0, len(faultKinds)+len(faultAliases))
		for _, k := range faultKinds {
			names = append(names, string(k))
		}
		names = append(names, "timeout")
		return f, fmt.Errorf("fault %q: kind %q is not one of %s", item, name, strings.Join(names, ", "))
	}
	for i >= 0 {
		op := item[i]
		rest := item[i+1:]
		next := strings.IndexAny(rest, "@=*")
		val := rest
		if next >= 0 {
			val = rest[:next]
		}
		switch op {
		case '@':
			f.Param = val
		case '=':
			p, err := strconv.ParseFloat(val, 64)
			if err != nil || p < 0 || p > 1 {
				return f, fmt.Errorf("fault %q: probability %q is not a number from 0 to 1", item, val)
			}
			f.Probability = p
		case '*':
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return f, fmt.Errorf("fault %q: count %q is not a whole number >= 1", item, val)
			}
			f.Count = n
		}
		if next < 0 {
			break
		}
		i += 1 + next
	}
	if err := f.validParam(); err != nil {
		return f, fmt.Errorf("fault %q: %w", item, err)
	}
	return f, nil
}

// validParam checks Param for the kinds that take one.
func (f *Fault) validParam() error {
	if f.Param == "" {
		return nil
	}
	switch f.Kind {
	case FaultRateLimit:
		if _, err := f.duration(0); err != nil {
			return fmt.Errorf("Retry-After %q is not seconds or a duration", f.Param)
		}
	case FaultHang, FaultSlow:
		if _, err := f.duration(0); err != nil {
			return fmt.Errorf("param %q is not a duration such as 200ms", f.Param)
		}
	case FaultLarge:
		if n, err := strconv.Atoi(f.Param); err != nil || n < 1 {
			return fmt.Errorf("param %q is not a record count >= 1", f.Param)
		}
	case FaultDeep:
		if n, err := strconv.Atoi(f.Param); err != nil || n < 1 || n > 10_000_000 {
			return fmt.Errorf("param %q is not a nesting depth 1–10000000", f.Param)
		}
	default:
		return fmt.Errorf("kind %s takes no @param", f.Kind)
	}
	return nil
}

// duration reads Param as a duration ("200ms") or whole seconds ("5"), def when empty.
func (f *Fault) duration(def time.Duration) (time.Duration, error) {
	if f.Param == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(f.Param); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(f.Param)
	if err != nil || d < 0 {
		return 0, errors.New("bad duration")
	}
	return d, nil
}

// SetFaults replaces the active faults (nil clears them). Faults are tried in order; the first
// that matches the endpoint, has injections left and wins its probability roll applies.
func (s *Simulator) SetFaults(f []Fault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = slices.Clone(f)
}

// pickFault chooses the fault for one request, consuming a count.
func (s *Simulator) pickFault(endpoint string) (Fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if f.Count < 0 || !endpointMatches(f.Endpoint, endpoint) {
			continue
		}
		if f.Probability < 1 && s.faultRand.Float64() >= f.Probability {
			continue
		}
		picked := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				f.Count = -1 // spent
			}
		}
		return picked, true
	}
	return Fault{}, false
}

const loginPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Darktrace | Login</title></head>
<body class="login"><form method="post" action="/login"><input name="username"><input type="password" name="password">
<button type="submit">Log In</button></form></body></html>
`

func proxyPage(code int) string {
	t := fmt.Sprintf("%d %s", code, http.StatusText(code))
	return "<html>\r\n<head><title>" + t + "</title></head>\r\n<body>\r\n<center><h1>" + t +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

func writeHTML(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body) // a failed write means the client left; nothing to do
}

// serveFault answers an authenticated request with fault f; h is the endpoint's handler for
// the kinds that distort a normal answer.
func (s *Simulator) serveFault(w http.ResponseWriter, r *http.Request, now time.Time, seg string, f Fault, h handler) {
	switch f.Kind {
	case FaultJSON500:
		writeJSONError(w, http.StatusInternalServerError, "error", "Internal Server Error")
	case FaultHTML500:
		writeHTML(w, http.StatusInternalServerError, proxyPage(http.StatusInternalServerError))
	case FaultBadGateway:
		writeHTML(w, http.StatusBadGateway, proxyPage(http.StatusBadGateway))
	case FaultUnavailable:
		writeHTML(w, http.StatusServiceUnavailable, proxyPage(http.StatusServiceUnavailable))
	case FaultRateLimit:
		d, _ := f.duration(time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
		writeJSONError(w, http.StatusTooManyRequests, "error", "Too Many Requests")
	case FaultHang:
		d, _ := f.duration(0)
		var timeout <-chan time.Time
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-r.Context().Done():
		case <-s.done:
		case <-timeout:
			h(s, w, r, now, 0)
		}
	case FaultSlow:
		d, _ := f.duration(50 * time.Millisecond)
		h(s, &slowWriter{ResponseWriter: w, r: r, s: s, delay: d}, r, now, 0)
	case FaultTruncated:
		bw := &bufferedWriter{ResponseWriter: w}
		h(s, bw, r, now, 0)
		w.WriteHeader(bw.status())
		_, _ = w.Write(bw.buf.Bytes()[:bw.buf.Len()/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		// Aborting makes net/http cut the connection without the final chunk, so the client
		// sees an unexpected EOF inside the JSON, as when a proxy or the appliance dies.
		panic(http.ErrAbortHandler)
	case FaultInvalidJSON:
		bw := &bufferedWriter{ResponseWriter: w}
		h(s, bw, r, now, 0)
		body := bw.buf.Bytes()[:bw.buf.Len()/2]
		// A raw NUL is invalid anywhere in JSON, inside strings too.
		body = append(body, "\x00<!-- upstream error -->"...)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	case FaultLoginPage:
		writeHTML(w, http.StatusOK, loginPage)
	case FaultSignature:
		writeJSONError(w, http.StatusBadRequest, seg, "API SIGNATURE ERROR")
	case FaultDate:
		writeJSONError(w, http.StatusBadRequest, seg, "API DATE ERROR")
	case FaultForbidden:
		redirect(w, "/403")
	case FaultLoginRedirect:
		redirect(w, "/login")
	case FaultReset:
		resetConn(w)
	case FaultError200:
		writeJSONError(w, http.StatusOK, "error", "Unable to process request")
	case FaultResponseError:
		writeJSONError(w, http.StatusOK, "response", "ERROR")
	case FaultEmpty:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, "[]")
	case FaultLarge:
		n := 10_000
		if f.Param != "" {
			n, _ = strconv.Atoi(f.Param)
		}
		h(s, w, r, now, n)
	case FaultDeep:
		depth := 100_000
		if f.Param != "" {
			depth, _ = strconv.Atoi(f.Param)
		}
		bw := &bufferedWriter{ResponseWriter: w}
		h(s, bw, r, now, 0)
		body := bw.buf.Bytes()
		if i := bytes.IndexByte(body, '['); bw.status() == http.StatusOK && i >= 0 {
			id := strconv.Itoa(DeepRecordID)
			deep := `{"pbid":` + id + `,"codeid":` + id + `,"id":"` + id + `","time":` + strconv.FormatInt(now.UnixMilli(), 10) +
				`,"nested":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
			if rest := bytes.TrimSpace(body[i+1:]); len(rest) > 0 && rest[0] != ']' {
				deep += ","
			}
			body = append(append(append([]byte(nil), body[:i+1]...), deep...), body[i+1:]...)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(bw.status())
		_, _ = w.Write(body)
	default:
		writeJSONError(w, http.StatusInternalServerError, "error", "unknown fault "+string(f.Kind))
	}
}

// resetConn takes the connection over and closes it with SO_LINGER 0, which sends a TCP RST.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: the closest is a stream reset
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn() // skip the TLS close_notify: a reset is abrupt
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // best effort: without it the close is orderly, not a reset
	}
	raw.Close()
}

// bufferedWriter captures a handler's body so a fault can distort it.
type bufferedWriter struct {
	http.ResponseWriter
	code int
	buf  bytes.Buffer
}

func (b *bufferedWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferedWriter) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}

// slowWriter trickles the body in small flushed pieces.
type slowWriter struct {
	http.ResponseWriter
	r     *http.Request
	s     *Simulator
	delay time.Duration
}

const slowPiece = 512

func (sw *slowWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		t := time.NewTimer(sw.delay)
		select {
		case <-sw.r.Context().Done():
			t.Stop()
			return written, sw.r.Context().Err()
		case <-sw.s.done:
			t.Stop()
			return written, errors.New("simulator closed")
		case <-t.C:
		}
		n := min(slowPiece, len(p))
		m, err := sw.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		if fl, ok := sw.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		p = p[n:]
	}
	return written, nil
}
