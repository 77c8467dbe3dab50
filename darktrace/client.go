package darktrace

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dtforward/dtforward/internal/tlsconfig"
)

// DefaultTimeout bounds one request, response body included, when Config.Timeout is 0.
const DefaultTimeout = 60 * time.Second

// DefaultUserAgent is sent when Config.UserAgent is empty.
const DefaultUserAgent = "dtforward/dev"

// Config configures a Client. Tokens are plain strings here; the config package keeps them as
// config.Secret until this point, and the Client never puts them in an error.
type Config struct {
	URL          string        // base URL, e.g. https://appliance.example (no trailing path needed)
	PublicToken  string        // sent as DTAPI-Token
	PrivateToken string        // HMAC key; never sent
	AllowHTTP    bool          // plain http:// only when true (tests, simulator); otherwise New errors
	Timeout      time.Duration // per request, whole body included; 0 = DefaultTimeout
	TLS          tlsconfig.Options
	UserAgent    string           // default DefaultUserAgent
	Now          func() time.Time // clock for DTAPI-Date; nil = time.Now (tests skew it)
	// OnDate, when set, is called with the appliance's clock (the HTTP Date header) of every
	// response that carries one, errors included, as soon as its headers arrive: dtforward
	// keeps its estimate of the appliance clock current with it.
	OnDate func(date time.Time)
	// OnMalformed, when set, receives each array element skipped because it is not valid JSON
	// (e.g. nested deeper than encoding/json allows); the rest of the answer is delivered.
	// When nil, such an element fails the whole answer.
	OnMalformed func(MalformedRecord)
	// MaxStringBytes cuts every string of a record longer than it (0: DefaultMaxStringBytes;
	// negative: no limit), so one huge field costs that much memory, not several copies of
	// itself. MaxArrayBytes likewise cuts every array of a record, at any depth, after its last
	// whole element within that many bytes (0: DefaultMaxArrayBytes; negative: no limit).
	// OnTrimmed, when set, is told of each record cut: what was cut in Cuts, how much in Err.
	MaxStringBytes int
	MaxArrayBytes  int
	OnTrimmed      func(MalformedRecord)
}

// DefaultMaxStringBytes is where a string of a record is cut by default: far above any field
// a SIEM line can carry (SIEM_MAX_MESSAGE_BYTES), far below what would strain memory.
const DefaultMaxStringBytes = 64 << 10

// DefaultMaxArrayBytes is where an array of a record is cut by default. Real arrays (model
// tags, triggered components, an incident's details or devices) hold tens of elements, a few
// KiB: a whole real record is under 4 KiB (testdata/realshapes), the simulator's arrays hold at
// most a few elements. 1 MiB is hundreds of times that, and 16 times the longest string kept,
// so no real record is cut; a hostile one (a model with five million tags, 200 MB) costs 1 MiB
// per array, not the 200 MB held, then decoded, then formatted.
const DefaultMaxArrayBytes = 1 << 20

// Client is a signed HTTP(S) client for one appliance. It is safe for concurrent use, although
// dtforward keeps one request in flight per appliance (the API documents no rate limit, and
// appliances are not sized for parallel pollers).
type Client struct {
	base    url.URL
	signer  *Signer
	http    *http.Client
	timeout time.Duration
	ua      string
	now     func() time.Time
	onDate  func(time.Time)
	// onMalformed: see Config.OnMalformed.
	onMalformed func(MalformedRecord)
	maxString   int
	maxArray    int
	onTrimmed   func(MalformedRecord)
	// secrets are scrubbed from any text that reaches an error, in case an appliance or proxy
	// echoes a request header back in a body.
	secrets []string
}

// New checks cfg and returns a Client. It does no network I/O.
func New(cfg Config) (*Client, error) {
	var problems []error
	var base url.URL
	if cfg.URL == "" {
		problems = append(problems, errors.New("darktrace: URL is empty; set DARKTRACE_URL to https://<appliance>"))
	} else if u, err := CheckURL(cfg.URL, cfg.AllowHTTP, "DARKTRACE_ALLOW_HTTP=true"); err != nil {
		problems = append(problems, fmt.Errorf("darktrace: URL %w", err))
	} else {
		base = u
	}
	if cfg.PublicToken == "" {
		problems = append(problems, errors.New("darktrace: public token is empty; set DARKTRACE_PUBLIC_TOKEN"))
	}
	if cfg.PrivateToken == "" {
		problems = append(problems, errors.New("darktrace: private token is empty; set DARKTRACE_PRIVATE_TOKEN"))
	}
	for _, tok := range []struct{ name, value string }{{"DARKTRACE_PUBLIC_TOKEN", cfg.PublicToken}, {"DARKTRACE_PRIVATE_TOKEN", cfg.PrivateToken}} {
		// A header cannot carry these, and a stray newline from a token file would otherwise
		// surface as a baffling transport error on every request. The value is never printed.
		if strings.IndexFunc(tok.value, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			problems = append(problems, fmt.Errorf("darktrace: %s contains whitespace or control characters (a trailing newline from a file?)", tok.name))
		}
	}
	if cfg.Timeout < 0 {
		problems = append(problems, fmt.Errorf("darktrace: timeout %s is negative", cfg.Timeout))
	}
	tlsCfg, err := tlsconfig.Client(cfg.TLS)
	if err != nil {
		problems = append(problems, fmt.Errorf("darktrace: TLS: %w", err))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 2
	c := &Client{
		base:        base,
		signer:      NewSigner(cfg.PublicToken, cfg.PrivateToken),
		timeout:     cfg.Timeout,
		ua:          cfg.UserAgent,
		now:         cfg.Now,
		onDate:      cfg.OnDate,
		onMalformed: cfg.OnMalformed,
		maxString:   cfg.MaxStringBytes,
		maxArray:    cfg.MaxArrayBytes,
		onTrimmed:   cfg.OnTrimmed,
		secrets:     []string{cfg.PublicToken, cfg.PrivateToken},
	}
	switch {
	case c.maxString == 0:
		c.maxString = DefaultMaxStringBytes
	case c.maxString < 0:
		c.maxString = 0
	}
	switch {
	case c.maxArray == 0:
		c.maxArray = DefaultMaxArrayBytes
	case c.maxArray < 0:
		c.maxArray = 0
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.ua == "" {
		c.ua = DefaultUserAgent
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.http = &http.Client{
		Transport: tr,
		// A 302 is the appliance's answer (to /403 or /login), not a hop to take: following it
		// would turn "token lacks permission" into an unhelpful HTML login page.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// No http.Client.Timeout: the per-request context deadline covers headers and body, and
		// lets us tell our timeout apart from the caller's cancellation.
	}
	return c, nil
}

// Host returns the host[:port] of the appliance URL, for the default appliance name and for
// building breach URLs when the appliance sends none.
func (c *Client) Host() string { return c.base.Host }

// CloseIdleConnections closes kept-alive connections; call it when done with the Client so no
// connection goroutines outlive it.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Status fetches GET /status?includechildren=false&fast=true, the cheap health probe.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.GetJSON(ctx, "/status?includechildren=false&fast=true", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// GetJSON fetches a single-object endpoint (e.g. /antigena/summary) and decodes it into v.
// Errors are *Error.
func (c *Client) GetJSON(ctx context.Context, pathAndQuery string, v any) error {
	endpoint := endpointOf(pathAndQuery)
	n := 0
	return c.Stream(ctx, pathAndQuery, func(raw []byte) error {
		n++
		if n > 1 {
			return &Error{Class: ClassPermanent, Endpoint: endpoint, StatusCode: http.StatusOK,
				Msg: "expected one JSON object, got an array of several; use Stream/Records for list endpoints"}
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return &Error{Class: ClassPermanent, Endpoint: endpoint, StatusCode: http.StatusOK,
				Msg: "response does not match the expected shape", Err: err}
		}
		return nil
	})
}

// Stream GETs pathAndQuery (path + "?" + query exactly as to be sent AND signed; the caller
// fixes the order) and calls fn for each element of the returned JSON array (a single top-level
// object counts as one element), with the raw bytes of that element (valid only during the
// call). Streaming: the body is never held whole. A truncated/invalid body is an error of the
// whole request (class retry). An error from fn stops and is returned as is.
//
// Every other failure is an *Error. Elements already passed to fn before a body error stay
// passed: callers treat the request as failed and must not move their checkpoint. The body is
// read while fn runs, so Config.Timeout covers fn's time too: keep fn quick (decode, collect),
// and deliver after Stream returns.
func (c *Client) Stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) error {
	_, err := c.StreamDated(ctx, pathAndQuery, fn)
	return err
}

// StreamDated is Stream that also returns the appliance's clock when it answered: the
// response's Date header (one-second resolution), or the zero time when no response arrived or
// it had no valid Date. The poller never lets a window end after it: the appliance cannot
// have created anything later yet.
func (c *Client) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (date time.Time, err error) {
	err = c.stream(ctx, pathAndQuery, fn, &date)
	return date, err
}

func (c *Client) stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error, date *time.Time) error {
	endpoint := endpointOf(pathAndQuery)
	reqCtx, cancel := context.WithTimeoutCause(ctx, c.timeout, errOurTimeout)
	defer cancel()

	req, err := c.newRequest(reqCtx, pathAndQuery)
	if err != nil {
		return &Error{Class: ClassPermanent, Endpoint: endpoint, Msg: "cannot build request", Err: err}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, reqCtx, endpoint, err)
	}
	defer resp.Body.Close()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		*date = d
		if c.onDate != nil {
			c.onDate(d)
		}
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := readSnippet(resp.Body)
		if e := classify(c.response(endpoint, resp, body)); e != nil {
			return e
		}
		// Unreachable: classify has a class for every non-2xx status.
		return &Error{Class: ClassPermanent, Endpoint: endpoint, StatusCode: resp.StatusCode, Msg: "unexpected HTTP status"}
	}

	br := bufio.NewReaderSize(resp.Body, 64<<10)
	first, err := firstByte(br)
	if err != nil {
		// A body cut by our own timeout can read as a clean EOF: that is a timeout, not an
		// empty answer.
		if errors.Is(err, io.EOF) && reqCtx.Err() == nil {
			return &Error{Class: ClassRetry, Endpoint: endpoint, StatusCode: resp.StatusCode,
				Msg: "empty response body", Err: io.ErrUnexpectedEOF}
		}
		return c.transportError(ctx, reqCtx, endpoint, err)
	}
	if first != '[' && first != '{' {
		// Not JSON we can stream: an HTML page, a plain-text redirect notice, garbage. Classify
		// on a bounded prefix.
		body, _ := readSnippet(br)
		r := c.response(endpoint, resp, body)
		if e := classify(r); e != nil {
			return e
		}
		return &Error{Class: ClassRetry, Endpoint: endpoint, StatusCode: resp.StatusCode,
			Msg: "response is not JSON (" + quoteSnippet(c.scrub(body)) + ")"}
	}

	if first == '{' {
		// A 200 can still carry {"error": ...} or {"response": "ERROR"}; a real record cannot
		// look like that (see errorObject), so check the single object before handing it on.
		inner := fn
		fn = func(raw []byte) error {
			if e := classify(c.response(endpoint, resp, raw)); e != nil {
				return e
			}
			return inner(raw)
		}
	}
	var bad func(int, []byte, error)
	if c.onMalformed != nil {
		bad = func(index int, raw []byte, err error) {
			c.onMalformed(MalformedRecord{Endpoint: endpoint, Index: index, ID: elementID(raw), Err: err})
		}
	}
	var trimmed func(int, []byte, cutCount)
	if c.onTrimmed != nil {
		trimmed = func(index int, raw []byte, cut cutCount) {
			r := MalformedRecord{Endpoint: endpoint, Index: index, ID: elementID(raw)}
			var errs []error
			if cut.stringBytes > 0 {
				r.Cuts = append(r.Cuts, "string over "+sizeLabel(c.maxString))
				errs = append(errs, fmt.Errorf("%d bytes of strings longer than %d bytes dropped", cut.stringBytes, c.maxString))
			}
			if cut.arrayElements > 0 {
				r.Cuts = append(r.Cuts, "array over "+sizeLabel(c.maxArray))
				errs = append(errs, fmt.Errorf("%d elements of arrays longer than %d bytes dropped", cut.arrayElements, c.maxArray))
			}
			r.Err = errors.Join(errs...)
			c.onTrimmed(r)
		}
	}
	n, offset, err := decodeElements(br, fn, bad, c.maxString, c.maxArray, trimmed)
	var cbErr callbackError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cbErr):
		return cbErr.err
	}
	return c.bodyError(ctx, reqCtx, endpoint, resp.StatusCode, n, offset, err)
}

func (c *Client) newRequest(ctx context.Context, pathAndQuery string) (*http.Request, error) {
	if !strings.HasPrefix(pathAndQuery, "/") {
		return nil, fmt.Errorf("path %q must start with /", pathAndQuery)
	}
	for i := 0; i < len(pathAndQuery); i++ {
		if b := pathAndQuery[i]; b <= ' ' || b >= 0x7f || b == '#' {
			return nil, fmt.Errorf("path %q: byte %q would need URL encoding; only identity-encoded values can be signed as sent", pathAndQuery, b)
		}
	}
	u := c.base
	path, query, hasQuery := strings.Cut(pathAndQuery, "?")
	u.Path = path
	// RawQuery verbatim: url.Values would sort the parameters and the signature covers the
	// order as sent.
	u.RawQuery = query
	u.ForceQuery = hasQuery && query == ""
	if got := u.RequestURI(); got != pathAndQuery {
		// The signature covers the text as sent; if Go would encode anything, the appliance
		// would verify a different string. dtforward only sends identity-encoded values.
		return nil, fmt.Errorf("path %q would be sent as %q; only characters that need no URL encoding are supported", pathAndQuery, got)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if got := req.URL.RequestURI(); got != pathAndQuery {
		return nil, fmt.Errorf("path %q would be sent as %q; only characters that need no URL encoding are supported", pathAndQuery, got)
	}
	date := FormatDate(c.now())
	req.Header.Set("DTAPI-Token", c.signer.Public())
	req.Header.Set("DTAPI-Date", date)
	req.Header.Set("DTAPI-Signature", c.signer.Sign(pathAndQuery, date))
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// response gathers what classify needs, with the clock the signature used.
func (c *Client) response(endpoint string, resp *http.Response, body []byte) response {
	return response{
		Endpoint:   endpoint,
		StatusCode: resp.StatusCode,
		Header:     resp.Header,
		Body:       body,
		Now:        c.now(),
		scrub:      c.scrub,
	}
}

// scrub removes the tokens from text that may end up in an error.
func (c *Client) scrub(b []byte) []byte {
	for _, s := range c.secrets {
		if len(s) >= 4 && bytes.Contains(b, []byte(s)) {
			b = bytes.ReplaceAll(b, []byte(s), []byte("[redacted]"))
		}
	}
	return b
}

// endpointOf returns the path part, which is what errors and metrics name.
func endpointOf(pathAndQuery string) string {
	p, _, _ := strings.Cut(pathAndQuery, "?")
	return p
}

// snippetLimit bounds what is read of a non-streamed (error) body.
const snippetLimit = 16 << 10

// readSnippet reads at most snippetLimit bytes, then drains a little more so the connection can
// be reused; a huge error body is not worth reading.
func readSnippet(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, snippetLimit))
	_, _ = io.CopyN(io.Discard, r, 64<<10)
	return b, err
}
