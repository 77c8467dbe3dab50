// Package hecsim is a Splunk HTTP Event Collector for tests, built from Splunk's public
// documentation of HEC: token authentication ("Authorization: Splunk <token>", codes 1–4),
// the event endpoint with batched JSON envelopes and gzip, event validation (5 no data,
// 6 invalid data format with invalid-event-number, 7 incorrect index, 12 event field required,
// 13 event field blank, 15 indexed fields), channels (10 missing, 11 invalid) and indexer
// acknowledgement (ackId per channel, /services/collector/ack, an id answered true once), the
// health endpoint (17, 18) and the answers a loaded collector gives (9 server busy, 429, 413).
//
// Faults a real indexer has can be injected: requests indexed late, requests lost before they
// are indexed (never acknowledged), acknowledgements lost after indexing, an indexer restart
// that forgets everything pending, a busy spell, and the whole collector down.
package hecsim

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token is one HEC token.
type Token struct {
	Ack      bool     // indexer acknowledgement on (useACK)
	Disabled bool     // answered 403 "Token disabled"
	Indexes  []string // allowed indexes; nil allows any
}

// Options configure the collector.
type Options struct {
	Tokens map[string]Token
	// CertFile and KeyFile serve HTTPS; empty serves plain HTTP.
	CertFile, KeyFile string
	// MaxContentLength answers 413 to a request whose body, decompressed, is larger than this;
	// 0 means no limit.
	MaxContentLength int
	// IndexDelay is how long a request takes to be indexed (acknowledged) after it is accepted.
	IndexDelay time.Duration
	// Discard counts indexed events without keeping them (benchmarks).
	Discard bool
}

// Event is one indexed event.
type Event struct {
	Time       float64           // "time", 0 when absent
	HasTime    bool              // whether "time" was set
	Host       string            // "host"
	Source     string            // "source"
	Sourcetype string            // "sourcetype"
	Index      string            // "index" ("main" when absent, as for a token defaulting to main)
	Fields     map[string]string // "fields"
	Event      json.RawMessage   // "event" as sent
	Channel    string
	Token      string
}

// Answer codes and texts, as Splunk documents them.
var texts = map[int]string{
	0: "Success", 1: "Token disabled", 2: "Token is required", 3: "Invalid authorization", 4: "Invalid token",
	5: "No data", 6: "Invalid data format", 7: "Incorrect index", 8: "Internal server error", 9: "Server is busy",
	10: "Data channel is missing", 11: "Invalid data channel", 12: "Event field is required",
	13: "Event field cannot be blank", 14: "ACK is disabled", 15: "Error in handling indexed fields",
	17: "HEC is healthy", 18: "HEC is unhealthy, queues are full",
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// pending is an accepted request on its way to the index.
type pending struct {
	events  []Event
	due     time.Time
	lose    bool // dropped before it is indexed: never acknowledged
	loseAck bool // indexed, but its acknowledgement is forgotten
}

type channel struct {
	next    int64
	pending map[int64]*pending
	acked   map[int64]bool // indexed and not yet reported
}

// Stats counts what the collector answered.
type Stats struct {
	Posts      int         // requests to the event endpoint
	ByStatus   map[int]int // event-endpoint answers by HTTP status
	AckQueries int
	Health     int
}

// HEC is the collector.
type HEC struct {
	opts Options

	mu        sync.Mutex
	channels  map[string]*channel
	indexed   []Event
	count     int // events indexed
	busy      int // answer this many more event posts with 503 code 9 (-1 = until cleared)
	throttle  int // answer this many more event posts with 429
	loseNext  int // lose this many more accepted requests before they are indexed
	loseAcks  int // forget the acknowledgement of this many more indexed requests
	stats     Stats
	listener  net.Listener
	server    *http.Server
	addr      string
	tlsConfig *tls.Config
	onRequest func(*http.Request)
}

// New returns a collector; Start serves it.
func New(o Options) (*HEC, error) {
	h := &HEC{opts: o, channels: map[string]*channel{}, stats: Stats{ByStatus: map[int]int{}}}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		h.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return h, nil
}

// Start listens on addr ("127.0.0.1:0" for any port) and returns the base URL.
func (h *HEC) Start(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	if h.tlsConfig != nil {
		l = tls.NewListener(l, h.tlsConfig)
	}
	// Clients killed mid-handshake are part of the tests; their errors are not news.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	h.mu.Lock()
	h.listener, h.server, h.addr = l, srv, l.Addr().String()
	h.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return h.URL(), nil
}

// URL is the base URL.
func (h *HEC) URL() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	scheme := "http"
	if h.tlsConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + h.addr
}

// Stop closes the listener and every connection: the collector is down. Pending requests
// stay pending (use Restart for an indexer that forgets them).
func (h *HEC) Stop() error {
	h.mu.Lock()
	srv := h.server
	h.server = nil
	h.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Resume serves again on the address it had.
func (h *HEC) Resume() error {
	h.mu.Lock()
	addr := h.addr
	h.mu.Unlock()
	var err error
	for i := 0; i < 100; i++ { // the port may linger a moment after Close
		if _, err = h.Start(addr); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Close stops the collector.
func (h *HEC) Close() error { return h.Stop() }

// RestartIndexer forgets everything not yet indexed and every acknowledgement not yet
// reported, as an indexer restart does: those requests are never acknowledged.
func (h *HEC) RestartIndexer() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advanceLocked(time.Now())
	for _, c := range h.channels {
		c.pending = map[int64]*pending{}
		c.acked = map[int64]bool{}
	}
}

// SetBusy answers the next n event posts with 503 "Server is busy" (code 9); -1 until
// SetBusy(0).
func (h *HEC) SetBusy(n int) { h.mu.Lock(); h.busy = n; h.mu.Unlock() }

// Throttle answers the next n event posts with 429 and Retry-After: 1.
func (h *HEC) Throttle(n int) { h.mu.Lock(); h.throttle = n; h.mu.Unlock() }

// LoseNext drops the next n accepted requests before they are indexed: 200 with an ackId,
// and the ackId is never true.
func (h *HEC) LoseNext(n int) { h.mu.Lock(); h.loseNext = n; h.mu.Unlock() }

// LoseAcks indexes the next n accepted requests but forgets their acknowledgement (an
// acknowledgement that expired before the client asked).
func (h *HEC) LoseAcks(n int) { h.mu.Lock(); h.loseAcks = n; h.mu.Unlock() }

// OnRequest calls fn for every request before it is answered.
func (h *HEC) OnRequest(fn func(*http.Request)) { h.mu.Lock(); h.onRequest = fn; h.mu.Unlock() }

// Events returns the indexed events, in order.
func (h *HEC) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advanceLocked(time.Now())
	return append([]Event(nil), h.indexed...)
}

// Stats returns the counters.
func (h *HEC) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	s.ByStatus = map[int]int{}
	for k, v := range h.stats.ByStatus {
		s.ByStatus[k] = v
	}
	return s
}

// Indexed returns how many events were indexed.
func (h *HEC) Indexed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advanceLocked(time.Now())
	return h.count
}

func (h *HEC) indexLocked(events []Event) {
	h.count += len(events)
	if !h.opts.Discard {
		h.indexed = append(h.indexed, events...)
	}
}

// advanceLocked indexes the pending requests that are due.
func (h *HEC) advanceLocked(now time.Time) {
	for _, c := range h.channels {
		for id, p := range c.pending {
			if now.Before(p.due) {
				continue
			}
			delete(c.pending, id)
			if p.lose {
				continue
			}
			h.indexLocked(p.events)
			if !p.loseAck {
				c.acked[id] = true
			}
		}
	}
}

// ServeHTTP routes the collector's endpoints.
func (h *HEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	fn := h.onRequest
	h.mu.Unlock()
	if fn != nil {
		fn(r)
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/services/collector/health", "/services/collector/health/1.0":
		h.health(w)
	case "/services/collector/event", "/services/collector/event/1.0", "/services/collector":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.event(w, r)
	case "/services/collector/ack", "/services/collector/ack/1.0":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ack(w, r)
	default:
		http.NotFound(w, r)
	}
}

func reply(w http.ResponseWriter, status, code int, extra map[string]any) {
	body := map[string]any{"text": texts[code], "code": code}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (h *HEC) health(w http.ResponseWriter) {
	h.mu.Lock()
	h.stats.Health++
	busy := h.busy != 0
	h.mu.Unlock()
	if busy {
		reply(w, http.StatusServiceUnavailable, 18, nil)
		return
	}
	reply(w, http.StatusOK, 17, nil)
}

// auth checks the token: the answer status and code, or 0 and the token.
func (h *HEC) auth(r *http.Request) (status, code int, tok Token, name string) {
	v := r.Header.Get("Authorization")
	if v == "" {
		return http.StatusUnauthorized, 2, Token{}, ""
	}
	name, ok := strings.CutPrefix(v, "Splunk ")
	if !ok || name == "" {
		return http.StatusUnauthorized, 3, Token{}, ""
	}
	tok, known := h.opts.Tokens[name]
	switch {
	case !known:
		return http.StatusForbidden, 4, Token{}, ""
	case tok.Disabled:
		return http.StatusForbidden, 1, Token{}, ""
	}
	return 0, 0, tok, name
}

// channelOf returns the request's channel (header or query), or an answer code.
func channelOf(r *http.Request, required bool) (string, int) {
	ch := r.Header.Get("X-Splunk-Request-Channel")
	if ch == "" {
		ch = r.URL.Query().Get("channel")
	}
	switch {
	case ch == "" && required:
		return "", 10
	case ch != "" && !guid.MatchString(ch):
		return "", 11
	}
	return ch, 0
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	}
	return io.ReadAll(io.LimitReader(rd, 256<<20))
}

func (h *HEC) event(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
	h.mu.Lock()
	h.stats.Posts++
	h.mu.Unlock()
	status, code, extra := h.accept(r, raw, err)
	h.mu.Lock()
	h.stats.ByStatus[status]++
	h.mu.Unlock()
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Too Many Requests", status)
		return
	}
	if status == http.StatusRequestEntityTooLarge {
		http.Error(w, "Content-Length of request exceeds max_content_length", status)
		return
	}
	reply(w, status, code, extra)
}

// accept validates and stores one event post.
func (h *HEC) accept(r *http.Request, raw []byte, readErr error) (status, code int, extra map[string]any) {
	if st, c, _, _ := h.auth(r); st != 0 {
		return st, c, nil
	}
	_, _, tok, name := h.auth(r)
	ch, c := channelOf(r, tok.Ack)
	if c != 0 {
		return http.StatusBadRequest, c, nil
	}
	h.mu.Lock()
	switch {
	case h.throttle != 0:
		if h.throttle > 0 {
			h.throttle--
		}
		h.mu.Unlock()
		return http.StatusTooManyRequests, 9, nil
	case h.busy != 0:
		if h.busy > 0 {
			h.busy--
		}
		h.mu.Unlock()
		return http.StatusServiceUnavailable, 9, nil
	}
	h.mu.Unlock()
	if readErr != nil {
		return http.StatusBadRequest, 6, map[string]any{"invalid-event-number": 0}
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	body, err := readBody(r)
	if err != nil {
		return http.StatusBadRequest, 6, map[string]any{"invalid-event-number": 0}
	}
	if h.opts.MaxContentLength > 0 && len(body) > h.opts.MaxContentLength {
		return http.StatusRequestEntityTooLarge, 0, nil
	}
	events, bad, badCode := parseEvents(body, tok, ch, name)
	if bad < 0 && len(events) == 0 {
		return http.StatusBadRequest, 5, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advanceLocked(time.Now())
	if bad >= 0 {
		// HEC stops at the event it cannot take; the ones before it are indexed, without an
		// acknowledgement (the answer is an error).
		h.indexLocked(events)
		return http.StatusBadRequest, badCode, map[string]any{"invalid-event-number": bad}
	}
	p := &pending{events: events, due: time.Now().Add(h.opts.IndexDelay)}
	if h.loseNext > 0 {
		h.loseNext--
		p.lose = true
	} else if h.loseAcks > 0 {
		h.loseAcks--
		p.loseAck = true
	}
	if ch == "" || !tok.Ack {
		if !p.lose {
			h.indexLocked(events)
		}
		return http.StatusOK, 0, nil
	}
	c2 := h.channelLocked(ch)
	id := c2.next
	c2.next++
	c2.pending[id] = p
	if h.opts.IndexDelay == 0 {
		h.advanceLocked(time.Now())
	}
	return http.StatusOK, 0, map[string]any{"ackId": id}
}

func (h *HEC) channelLocked(name string) *channel {
	c := h.channels[name]
	if c == nil {
		c = &channel{pending: map[int64]*pending{}, acked: map[int64]bool{}}
		h.channels[name] = c
	}
	return c
}

// envelope is one event as HEC reads it.
type envelope struct {
	Time       json.RawMessage `json:"time"`
	Host       *string         `json:"host"`
	Source     *string         `json:"source"`
	Sourcetype *string         `json:"sourcetype"`
	Index      *string         `json:"index"`
	Fields     map[string]any  `json:"fields"`
	Event      json.RawMessage `json:"event"`
}

// parseEvents reads concatenated envelopes. bad is the number of the first event HEC refuses
// (-1 when none) with its code.
func parseEvents(body []byte, tok Token, ch, token string) (events []Event, bad, code int) {
	dec := json.NewDecoder(bytes.NewReader(body))
	for n := 0; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return events, -1, 0
			}
			return events, n, 6
		}
		var env envelope
		if json.Unmarshal(raw, &env) != nil || len(bytes.TrimSpace(raw)) == 0 || raw[0] != '{' {
			return events, n, 6
		}
		if env.Event == nil {
			return events, n, 12
		}
		if ev := bytes.TrimSpace(env.Event); string(ev) == `""` || string(ev) == "null" {
			return events, n, 13
		}
		e := Event{Event: env.Event, Channel: ch, Token: token, Index: "main"}
		if len(env.Time) > 0 {
			t, err := parseTime(env.Time)
			if err != nil {
				return events, n, 6
			}
			e.Time, e.HasTime = t, true
		}
		if env.Host != nil {
			e.Host = *env.Host
		}
		if env.Source != nil {
			e.Source = *env.Source
		}
		if env.Sourcetype != nil {
			e.Sourcetype = *env.Sourcetype
		}
		if env.Index != nil && *env.Index != "" {
			e.Index = *env.Index
			if tok.Indexes != nil && !contains(tok.Indexes, e.Index) {
				return events, n, 7
			}
		}
		if env.Fields != nil {
			e.Fields = map[string]string{}
			for k, v := range env.Fields {
				s, ok := v.(string) // arrays of strings are allowed too; dtforward sends strings
				if !ok {
					if arr, isArr := v.([]any); isArr && allStrings(arr) {
						e.Fields[k] = fmt.Sprint(arr)
						continue
					}
					return events, n, 15
				}
				e.Fields[k] = s
			}
		}
		events = append(events, e)
	}
}

func parseTime(raw json.RawMessage) (float64, error) {
	s := strings.Trim(string(raw), `"`)
	return strconv.ParseFloat(s, 64)
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func allStrings(a []any) bool {
	for _, v := range a {
		if _, ok := v.(string); !ok {
			return false
		}
	}
	return true
}

func (h *HEC) ack(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.stats.AckQueries++
	h.mu.Unlock()
	st, c, tok, _ := h.auth(r)
	if st != 0 {
		reply(w, st, c, nil)
		return
	}
	if !tok.Ack {
		reply(w, http.StatusBadRequest, 14, nil)
		return
	}
	ch, c := channelOf(r, true)
	if c != 0 {
		reply(w, http.StatusBadRequest, c, nil)
		return
	}
	body, err := readBody(r)
	var q struct {
		Acks []int64 `json:"acks"`
	}
	if err != nil || json.Unmarshal(body, &q) != nil || q.Acks == nil {
		reply(w, http.StatusBadRequest, 6, nil)
		return
	}
	h.mu.Lock()
	h.advanceLocked(time.Now())
	cs := h.channelLocked(ch)
	out := map[string]bool{}
	for _, id := range q.Acks {
		if cs.acked[id] {
			delete(cs.acked, id) // answered true once; then it is unknown (false)
			out[strconv.FormatInt(id, 10)] = true
		} else {
			out[strconv.FormatInt(id, 10)] = false
		}
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"acks": out})
}
