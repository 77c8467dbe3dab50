// Package hec is the Splunk HTTP Event Collector sink: batches of event envelopes posted to
// /services/collector/event, and with indexer acknowledgement on, a batch counts as delivered
// only when /services/collector/ack says every request of it was indexed.
package hec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/httpsink"
)

// Endpoints, relative to the base URL.
const (
	EventPath  = "/services/collector/event"
	AckPath    = "/services/collector/ack"
	HealthPath = "/services/collector/health"
)

// HEC answer codes ("code" in the JSON body) the sink acts on.
const (
	CodeSuccess         = 0
	CodeTokenDisabled   = 1
	CodeTokenRequired   = 2
	CodeInvalidAuth     = 3
	CodeInvalidToken    = 4
	CodeNoData          = 5
	CodeInvalidData     = 6
	CodeIncorrectIndex  = 7
	CodeServerBusy      = 9
	CodeNoChannel       = 10
	CodeInvalidChannel  = 11
	CodeEventRequired   = 12
	CodeEventBlank      = 13
	CodeAckDisabled     = 14
	CodeIndexedFields   = 15
	CodeHealthy         = 17
	CodeUnhealthyQueues = 18
)

// Defaults.
const (
	DefaultAckTimeout = time.Minute
	// DefaultMaxBatchBytes bounds one request's uncompressed body. Splunk's max_content_length
	// has been 1 MB in older releases; 413 answers split a request further.
	DefaultMaxBatchBytes = 1 << 20
	defaultTimeout       = 10 * time.Second
	service              = "Splunk HEC"
	// maxRemembered bounds the acknowledged lines kept from failed sends.
	maxRemembered = 16384
)

// Sink is the HEC sink. It implements sink.Sink and Checker.
type Sink struct {
	cfg     Config
	base    string // URL without a trailing slash or collector path
	auth    string
	channel string
	client  *http.Client
	env     *envelope
	log     zerolog.Logger

	probed bool // the token's acknowledgement setting was confirmed (Ack only)

	buf  []byte // the request being built
	zbuf bytes.Buffer

	// remembered holds the lines acknowledged during a Send that failed as a whole: the
	// caller sends the same batch again, and those lines are not sent twice.
	remembered map[[32]byte]struct{}
	order      [][32]byte
}

// New validates cfg and returns the sink. It does no network I/O; with a StateDir it reads or
// creates the channel file there.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	client, err := httpsink.NewClient(cfg.TLS, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.setting("tls_ca_file"), err)
	}
	base := strings.TrimRight(cfg.URL, "/")
	for _, suffix := range []string{EventPath, "/services/collector"} {
		base = strings.TrimSuffix(base, suffix)
	}
	channel := ""
	if cfg.StateDir != "" {
		if channel, err = loadChannel(cfg.StateDir); err != nil {
			return nil, err
		}
	} else {
		host, _ := os.Hostname()
		channel = derivedChannel(cfg.Name, base, host)
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = *cfg.Logger
	}
	if strings.HasPrefix(base, "http://") {
		log.Warn().Str("address", base).Msg("the HEC URL is plain http: the token and the alerts cross the network unencrypted")
	}
	return &Sink{
		cfg: cfg, base: base, auth: "Splunk " + cfg.Token, channel: channel, client: client,
		env: newEnvelope(cfg.Format, cfg.Index, cfg.Sourcetypes), log: log,
		remembered: map[[32]byte]struct{}{},
	}, nil
}

// Channel returns the X-Splunk-Request-Channel the sink uses.
func (s *Sink) Channel() string { return s.channel }

// Close releases idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// request is one POST to the event endpoint: the messages it carries (indices into the
// batch) and, with acknowledgement on, its ackId.
type request struct {
	idx   []int
	ackID int64
	acked bool
}

// Send posts msgs in requests bounded by MaxBatchBytes and, with acknowledgement on, waits
// until every request is acknowledged. It returns nil only then. A request refused as too
// large (413) is split; an event HEC refuses by number (400) is returned as
// *sink.RejectedError once everything before it is acknowledged; a busy or throttling answer
// (503, 429) as an error carrying the wait asked for. Lines acknowledged during a Send that
// fails are remembered and not sent again when the caller retries the batch.
func (s *Sink) Send(ctx context.Context, msgs []sink.Message) error {
	if err := s.probe(ctx); err != nil {
		return err
	}
	todo, skipped := s.unsent(msgs)
	if len(todo) == 0 {
		return nil
	}
	var posted []*request
	var failure error
	for _, idx := range s.split(msgs, todo) {
		reqs, err := s.post(ctx, msgs, idx)
		posted = append(posted, reqs...)
		if err != nil {
			failure = err
			break
		}
	}
	var ackErr error
	if s.cfg.Ack {
		ackErr = s.waitAcks(ctx, posted)
	} else {
		for _, r := range posted {
			r.acked = true
		}
	}
	if failure == nil && ackErr == nil {
		return nil
	}
	// The skipped lines go back in: the caller retries this batch with them in it.
	s.remember(msgs, append(posted, &request{idx: skipped, acked: true}))
	switch {
	case failure != nil && !isRejected(failure):
		return failure
	case ackErr != nil:
		// A refused event is reported only once everything before it is acknowledged;
		// until then the whole batch is retried.
		return ackErr
	}
	return failure
}

func isRejected(err error) bool {
	var re *sink.RejectedError
	return errors.As(err, &re)
}

// unsent returns the indices of msgs not acknowledged in an earlier, failed Send (todo) and
// of those that were (skipped), which it forgets.
func (s *Sink) unsent(msgs []sink.Message) (todo, skipped []int) {
	todo = make([]int, 0, len(msgs))
	for i := range msgs {
		if len(s.remembered) > 0 {
			k := sha256.Sum256(msgs[i].Line)
			if _, ok := s.remembered[k]; ok {
				delete(s.remembered, k)
				skipped = append(skipped, i)
				continue
			}
		}
		todo = append(todo, i)
	}
	if len(s.remembered) == 0 {
		s.order = s.order[:0]
	}
	return todo, skipped
}

// remember keeps the lines of the acknowledged requests of a failed Send.
func (s *Sink) remember(msgs []sink.Message, reqs []*request) {
	for _, r := range reqs {
		if !r.acked {
			continue
		}
		for _, i := range r.idx {
			k := sha256.Sum256(msgs[i].Line)
			if _, ok := s.remembered[k]; ok {
				continue
			}
			s.remembered[k] = struct{}{}
			s.order = append(s.order, k)
		}
	}
	for len(s.order) > maxRemembered {
		delete(s.remembered, s.order[0])
		s.order = s.order[1:]
	}
}

// split groups todo into requests of at most MaxBatchBytes of envelopes (at least one event
// each).
func (s *Sink) split(msgs []sink.Message, todo []int) [][]int {
	var out [][]int
	start, size := 0, 0
	var buf []byte
	for i, j := range todo {
		buf = s.env.appendEvent(buf[:0], &msgs[j])
		if i > start && size+len(buf) > s.cfg.MaxBatchBytes {
			out = append(out, todo[start:i])
			start, size = i, 0
		}
		size += len(buf)
	}
	return append(out, todo[start:])
}

// post sends the events idx in one request, splitting it on 413 and isolating an event HEC
// refuses by number. It returns the requests HEC accepted, in order.
func (s *Sink) post(ctx context.Context, msgs []sink.Message, idx []int) ([]*request, error) {
	s.buf = s.buf[:0]
	for _, j := range idx {
		s.buf = s.env.appendEvent(s.buf, &msgs[j])
	}
	ackID, err := s.postEvents(ctx, s.buf, len(idx))
	if err == nil {
		return []*request{{idx: idx, ackID: ackID}}, nil
	}
	var ae *answerError
	if !errors.As(err, &ae) {
		return nil, err
	}
	switch {
	case ae.status == http.StatusRequestEntityTooLarge && len(idx) > 1:
		h := len(idx) / 2
		first, err := s.post(ctx, msgs, idx[:h])
		if err != nil {
			return first, err
		}
		rest, err := s.post(ctx, msgs, idx[h:])
		return append(first, rest...), err
	case ae.status == http.StatusRequestEntityTooLarge:
		return nil, &sink.RejectedError{Index: idx[0], Reason: fmt.Sprintf("%s: the event alone is larger than the collector accepts (HTTP 413); raise max_content_length or lower SIEM_MAX_MESSAGE_BYTES", service)}
	case ae.event >= 0 && ae.event < len(idx):
		rejected := &sink.RejectedError{Index: idx[ae.event], Reason: ae.Error()}
		if ae.event == 0 {
			return nil, rejected
		}
		// HEC stops at the event it refuses; the ones before it are sent on their own so
		// that they are acknowledged before the refused one is reported.
		before, err := s.post(ctx, msgs, idx[:ae.event])
		if err != nil {
			return before, err
		}
		return before, rejected
	}
	return nil, err
}

// answer is HEC's JSON answer body.
type answer struct {
	Text         string `json:"text"`
	Code         *int   `json:"code"`
	AckID        *int64 `json:"ackId"`
	InvalidEvent *int   `json:"invalid-event-number"`
}

// answerError is a non-success answer with HEC's code and the event it names, if any.
type answerError struct {
	*httpsink.StatusError
	status int
	code   int // -1 when the body had none
	event  int // invalid-event-number, -1 when absent
}

func (e *answerError) Unwrap() error { return e.StatusError }

// postEvents posts one body of events envelopes and returns the ackId (-1 without
// acknowledgement).
func (s *Sink) postEvents(ctx context.Context, body []byte, events int) (int64, error) {
	resp, err := s.do(ctx, EventPath, body, events)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, s.answerErr(resp)
	}
	var a answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a); err != nil && s.cfg.Ack {
		return 0, fmt.Errorf("%s: unreadable answer to a batch: %w", service, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if !s.cfg.Ack {
		return -1, nil
	}
	if a.AckID == nil {
		s.probed = false
		return 0, &sink.ConfigError{Setting: s.cfg.setting("hec_ack"), Err: fmt.Errorf(
			"%s accepted a batch without an ackId: indexer acknowledgement is off for this token; turn it on for the token or set %s=false (HTTP 200 is then all there is)",
			service, s.cfg.setting("hec_ack"))}
	}
	return *a.AckID, nil
}

// do posts body (gzipped) of events events to path with the token and the channel.
func (s *Sink) do(ctx context.Context, path string, body []byte, events int) (*http.Response, error) {
	var rd io.Reader = bytes.NewReader(body)
	gz := len(body) > 0
	sent := 0
	if gz {
		z, err := httpsink.Gzip(&s.zbuf, body)
		if err != nil {
			return nil, err
		}
		rd, sent = bytes.NewReader(z), len(z)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("X-Splunk-Request-Channel", s.channel)
	req.Header.Set("Content-Type", "application/json")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL holds no secret; the token is in a header and never in an error.
		return nil, fmt.Errorf("%s: %w", service, err)
	}
	if sent > 0 && s.cfg.Hooks.Sent != nil { // answered, so it went out whole
		s.cfg.Hooks.Sent(events, sent)
	}
	return resp, nil
}

// answerErr reads a non-success answer into the sink package's error types.
func (s *Sink) answerErr(resp *http.Response) error {
	se := httpsink.ReadError(service, resp, time.Now())
	ae := &answerError{StatusError: se, status: resp.StatusCode, code: -1, event: -1}
	var a answer
	if json.Unmarshal([]byte(se.Body), &a) == nil {
		if a.Code != nil {
			ae.code = *a.Code
		}
		if a.InvalidEvent != nil {
			ae.event = *a.InvalidEvent
		}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &sink.ConfigError{Setting: s.cfg.setting("hec_token"), Err: fmt.Errorf("%s refused the token: %w", service, se)}
	case ae.code == CodeIncorrectIndex:
		return &sink.ConfigError{Setting: s.cfg.setting("hec_index"), Err: fmt.Errorf("%s refused the index (not allowed for this token?): %w", service, se)}
	case ae.code == CodeAckDisabled:
		s.probed = false
		return &sink.ConfigError{Setting: s.cfg.setting("hec_ack"), Err: fmt.Errorf(
			"%s: indexer acknowledgement is off for this token; turn it on for the token or set %s=false: %w", service, s.cfg.setting("hec_ack"), se)}
	}
	return ae
}

// probe confirms, once, that the token has indexer acknowledgement on before the first batch
// (and again after a configuration error), so that a token without it is reported before any
// event is sent rather than after each resend.
func (s *Sink) probe(ctx context.Context) error {
	if !s.cfg.Ack || s.probed {
		return nil
	}
	_, err := s.queryAcks(ctx, []int64{0})
	var ae *answerError
	if errors.As(err, &ae) && (ae.code == CodeNoChannel || ae.code == CodeInvalidChannel) {
		err = nil // a channel HEC does not know yet: it is created by the first batch
	}
	if err != nil {
		return err
	}
	s.probed = true
	return nil
}

// Check verifies, without sending an event, that the collector is healthy, that it takes the
// token (an empty post answers "No data" to a valid token) and, with acknowledgement on, that
// the token has it on. Errors about the token or the acknowledgement setting are
// *sink.ConfigError.
func (s *Sink) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+HealthPath, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s health: %w", service, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := httpsink.ReadError(service, resp, time.Now())
		resp.Body.Close()
		return fmt.Errorf("%s health: %w", service, err)
	}
	resp.Body.Close()
	resp, err = s.do(ctx, EventPath, nil, 0)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("%s answered an empty post with HTTP 200, not \"No data\": is %s a HEC?", service, s.base)
	}
	err = s.answerErr(resp)
	resp.Body.Close()
	var ae *answerError
	if !errors.As(err, &ae) || ae.code != CodeNoData {
		return err
	}
	s.probed = false
	return s.probe(ctx)
}
