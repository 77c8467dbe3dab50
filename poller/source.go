package poller

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

// Source names, as used in POLL_SOURCES, state files, logs and metric labels.
const (
	SourceBreaches  = "modelbreaches"
	SourceAntigena  = "antigena"
	SourceAIAnalyst = "aianalyst"
)

// SourceNames lists every source in the order they are documented.
var SourceNames = []string{SourceBreaches, SourceAntigena, SourceAIAnalyst}

// Fetcher is the part of *darktrace.Client the poller needs: GET pathAndQuery (sent and signed
// exactly as given) and call fn with each element of the JSON array returned.
type Fetcher interface {
	// StreamDated returns the appliance's clock when it answered (the HTTP Date header; zero
	// when the answer had none): no window is ever taken as complete beyond the appliance's
	// own "now", whatever our clock says. Part of the one interface, so that a wrapper (a
	// request limit, a shared fetch) cannot drop it without failing to compile.
	StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error)
}

// Filter decides which alerts are forwarded (the FILTER_* variables).
type Filter struct {
	// MinScore drops alerts scoring below it (0–1). It is also sent to /modelbreaches as
	// minscore. Manual Antigena actions carry score 0 and are exempt.
	MinScore float64
	// IncludeAcknowledged forwards breaches and AI Analyst events that are already acknowledged.
	// The query always asks for them (includeacknowledged=true): a breach acknowledged within one
	// poll interval would otherwise never be seen even when the user wants it.
	IncludeAcknowledged bool
	// IncludeSuppressed is sent as includesuppressed.
	IncludeSuppressed bool
	// Models and Tags, when set, keep only breaches (and Antigena actions that name a model)
	// whose model name matches Models and that have a model tag matching Tags. AI Analyst events
	// span several models and are not filtered by them.
	Models, Tags *regexp.Regexp
}

// allow reports whether it passes the filter.
func (f *Filter) allow(it *Item) bool {
	a := it.Alert
	if it.Acknowledged && !f.IncludeAcknowledged {
		return false
	}
	manual := a.Action != nil && a.Action.Manual
	if f.MinScore > 0 && !manual && a.Score < f.MinScore {
		return false
	}
	modelled := a.Kind == alert.KindBreach || (a.Kind == alert.KindAntigena && a.Model.Name != "")
	if !modelled {
		return true
	}
	if f.Models != nil && !f.Models.MatchString(a.Model.Name) {
		return false
	}
	if f.Tags != nil && !slices.ContainsFunc(a.Model.Tags, f.Tags.MatchString) {
		return false
	}
	return true
}

// Pipeline is the fetch → decode → normalize → sort → filter path for one appliance, shared by
// its sources (and by backfill). It keeps one request in flight per appliance.
type Pipeline struct {
	fetcher   Fetcher
	appliance string
	host      string
	filter    Filter
	log       zerolog.Logger
	inflight  chan struct{}
	anomalies darktrace.AnomalyFunc
}

// ReportAnomalies makes the pipeline pass the values of unexpected type its tolerant decoders
// find (the record is kept) to fn. Call it before the first fetch.
func (p *Pipeline) ReportAnomalies(fn darktrace.AnomalyFunc) *Pipeline {
	p.anomalies = fn
	return p
}

// NewPipeline returns the pipeline for one appliance. appliance is its label (DARKTRACE_NAME);
// host is the appliance host used to build links when a record carries none.
func NewPipeline(f Fetcher, appliance, host string, filter Filter, log zerolog.Logger) *Pipeline {
	return &Pipeline{
		fetcher: f, appliance: appliance, host: host, filter: filter,
		log:      log.With().Str("appliance", appliance).Logger(),
		inflight: make(chan struct{}, 1),
	}
}

// Appliance returns the appliance label.
func (p *Pipeline) Appliance() string { return p.appliance }

// Exclusive runs fn while holding the appliance's one request slot, so that other requests to
// the same appliance (a clock check against /status) never overlap a poll.
func (p *Pipeline) Exclusive(ctx context.Context, fn func(ctx context.Context) error) error {
	select {
	case p.inflight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.inflight }()
	return fn(ctx)
}

// Source returns the named source (modelbreaches, antigena or aianalyst).
func (p *Pipeline) Source(name string) (*Source, error) {
	k, ok := kinds[name]
	if !ok {
		return nil, fmt.Errorf("unknown source %q; valid: %s", name, strings.Join(SourceNames, ", "))
	}
	return &Source{kind: k, p: p}, nil
}

// Source is one endpoint of one appliance.
type Source struct {
	kind *kind
	p    *Pipeline
}

// Name returns the source name.
func (s *Source) Name() string { return s.kind.name }

// Windowed reports whether the endpoint takes a time window. /antigena does not: it returns the
// actions currently relevant, and state changes are found by comparing versions.
func (s *Source) Windowed() bool { return s.kind.windowed }

// Query returns the path and query for the window [start, end] (both inclusive, epoch ms),
// with the parameters in the fixed order the signature is computed over.
func (s *Source) Query(start, end time.Time) string {
	return s.kind.query(s.p, start.UnixMilli(), end.UnixMilli())
}

// Item is one fetched record after normalization.
type Item struct {
	Alert *alert.Alert
	// Key identifies the record across polls: pbid, codeid or incident event id.
	Key string
	// Version changes when a record with the same Key must be sent again: empty for breaches,
	// the action state for Antigena, score/group/acknowledged for AI Analyst events.
	Version string
	// Time orders the batch and ages the key out of the checkpoint (epoch ms): breach
	// creationTime, action update time, incident event createdAt.
	Time int64
	// Acknowledged is the record's acknowledged flag (for Filter.IncludeAcknowledged).
	Acknowledged bool
}

// Stats counts what happened to the records of one window.
type Stats struct {
	Fetched   int // array elements received
	Malformed int // skipped: did not decode or normalize
	Filtered  int // dropped by the Filter
	Deduped   int // already delivered (same key and version)
	Sent      int // handed to the Deliverer and accepted
}

// Batch is the outcome of one fetch: items sorted by (Time, Key), filtered, one per key.
type Batch struct {
	Items []Item
	Stats Stats
	// Present holds every key the response contained, filtered or not; for the window-less
	// Antigena endpoint it decides which remembered states can be forgotten.
	Present map[string]struct{}
	// Date is the appliance's clock when it answered (zero when the Fetcher cannot tell): a
	// window is complete only up to it.
	Date time.Time
}

// Fetch requests the window [start, end] and returns its records normalized, sorted and
// filtered (not deduplicated against any checkpoint). Malformed records are logged with their
// id and skipped. A failed request returns an error and no items: the caller must not move its
// checkpoint.
func (s *Source) Fetch(ctx context.Context, start, end time.Time) (*Batch, error) {
	q := s.Query(start, end)
	b := &Batch{Present: map[string]struct{}{}}
	err := s.p.Exclusive(ctx, func(ctx context.Context) (err error) {
		b.Date, err = s.p.fetcher.StreamDated(ctx, q, func(raw []byte) error {
			b.Stats.Fetched++
			it, err := s.kind.decode(s.p, bytes.Clone(raw))
			if err != nil {
				b.Stats.Malformed++
				s.p.log.Warn().Str("source", s.kind.name).Str("id", recordID(raw)).Err(err).
					Msg("malformed record skipped")
				return nil
			}
			b.Present[it.Key] = struct{}{}
			if !s.p.filter.allow(&it) {
				b.Stats.Filtered++
				return nil
			}
			b.Items = append(b.Items, it)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	// Never trust server order: sort by (time, key) with numeric keys compared as numbers, so
	// pbid 10 follows pbid 9.
	slices.SortStableFunc(b.Items, func(x, y Item) int {
		if c := cmp.Compare(x.Time, y.Time); c != 0 {
			return c
		}
		return compareKeys(x.Key, y.Key)
	})
	// A key listed twice in one response is sent once, in its last-listed version.
	seen := make(map[string]int, len(b.Items))
	out := b.Items[:0]
	for _, it := range b.Items {
		if i, ok := seen[it.Key]; ok {
			b.Stats.Deduped++
			out[i] = it
			continue
		}
		seen[it.Key] = len(out)
		out = append(out, it)
	}
	b.Items = out
	return b, nil
}

// PBIDQuery returns the path and query that fetch one breach by pbid. The appliance answers
// with one object, or {} when there is no such breach.
func PBIDQuery(pbid int64) string {
	return "/modelbreaches?pbid=" + strconv.FormatInt(pbid, 10) + "&minimal=false&deviceattop=true&historicmodelonly=true"
}

// FetchPBID asks the appliance for one breach by pbid (modelbreaches only) and returns its
// creation time; found is false when the appliance does not have it (an empty object or list).
// A record that does not decode is logged and reported found with created 0.
func (s *Source) FetchPBID(ctx context.Context, pbid int64) (created int64, found bool, err error) {
	if s.kind.name != SourceBreaches {
		return 0, false, fmt.Errorf("poller: %s has no pbids", s.kind.name)
	}
	err = s.p.Exclusive(ctx, func(ctx context.Context) error {
		_, err := s.p.fetcher.StreamDated(ctx, PBIDQuery(pbid), func(raw []byte) error {
			var b darktrace.Breach
			if err := json.Unmarshal(raw, &b); err != nil {
				s.p.log.Warn().Str("source", s.kind.name).Int64("id", pbid).Err(err).Msg("malformed record skipped")
				found = true // it exists; created stays 0
				return nil
			}
			if b.PBID == pbid {
				created, found = b.Created(), true
			}
			return nil
		})
		return err
	})
	return created, found, err
}

// FetchWindow is Fetch returning just the alerts, for one-shot callers (backfill).
func (s *Source) FetchWindow(ctx context.Context, start, end time.Time) ([]*alert.Alert, Stats, error) {
	b, err := s.Fetch(ctx, start, end)
	if err != nil {
		return nil, Stats{}, err
	}
	out := make([]*alert.Alert, len(b.Items))
	for i := range b.Items {
		out[i] = b.Items[i].Alert
	}
	return out, b.Stats, nil
}

func compareKeys(a, b string) int {
	ai, aerr := strconv.ParseInt(a, 10, 64)
	bi, berr := strconv.ParseInt(b, 10, 64)
	if aerr == nil && berr == nil {
		return cmp.Compare(ai, bi)
	}
	return strings.Compare(a, b)
}

// kind is what differs between endpoints.
type kind struct {
	name     string
	windowed bool
	query    func(p *Pipeline, start, end int64) string
	decode   func(p *Pipeline, raw []byte) (Item, error)
}

var kinds = map[string]*kind{
	SourceBreaches: {
		name: SourceBreaches, windowed: true,
		// DESIGN §5: this exact order. creationtime=true windows on creation, so a breach whose
		// activity began long before it was created is still caught. Never group=device: it
		// replaces the breach score with the device score.
		query: func(p *Pipeline, start, end int64) string {
			q := "/modelbreaches?starttime=" + strconv.FormatInt(start, 10) +
				"&endtime=" + strconv.FormatInt(end, 10) +
				"&creationtime=true&includeacknowledged=true&includesuppressed=" + strconv.FormatBool(p.filter.IncludeSuppressed) +
				"&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true"
			if p.filter.MinScore > 0 {
				// Digits and '.' only: the percent-encoding is the identity, so the signed and the
				// sent query agree.
				q += "&minscore=" + strconv.FormatFloat(p.filter.MinScore, 'f', -1, 64)
			}
			return q
		},
		decode: func(p *Pipeline, raw []byte) (Item, error) {
			b, err := darktrace.DecodeBreach(raw, p.anomalies)
			if err != nil {
				return Item{}, err
			}
			a, err := alert.FromBreach(&b, raw, p.appliance, p.host)
			if err != nil {
				return Item{}, err
			}
			return Item{Alert: a, Key: strconv.FormatInt(b.PBID, 10), Time: b.Created(), Acknowledged: b.Acknowledged.Acked}, nil
		},
	},
	SourceAntigena: {
		name: SourceAntigena,
		query: func(*Pipeline, int64, int64) string {
			return "/antigena?includecleared=true&includehistory=true"
		},
		decode: func(p *Pipeline, raw []byte) (Item, error) {
			x, err := darktrace.DecodeAction(raw, p.anomalies)
			if err != nil {
				return Item{}, err
			}
			a, err := alert.FromAction(&x, raw, p.appliance, p.host)
			if err != nil {
				return Item{}, err
			}
			// DESIGN keys state on updated+active+cleared; expires is added because an
			// extension moves it, and a line per extension is what the SOC wants to see.
			v := actionVersionOf(x.Updated.Int64(), x.Active, x.Cleared, x.Expires)
			t := x.Updated.Int64()
			if t == 0 {
				t = x.Start
			}
			return Item{Alert: a, Key: strconv.FormatInt(x.CodeID, 10), Version: v, Time: t}, nil
		},
	},
	SourceAIAnalyst: {
		name: SourceAIAnalyst, windowed: true,
		query: func(_ *Pipeline, start, end int64) string {
			return "/aianalyst/incidentevents?starttime=" + strconv.FormatInt(start, 10) +
				"&endtime=" + strconv.FormatInt(end, 10) +
				"&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true"
		},
		decode: func(p *Pipeline, raw []byte) (Item, error) {
			e, err := darktrace.DecodeIncidentEvent(raw, p.anomalies)
			if err != nil {
				return Item{}, err
			}
			if e.ID == "" {
				return Item{}, fmt.Errorf("incident event has no id")
			}
			a, err := alert.FromIncident(&e, raw, p.appliance, p.host)
			if err != nil {
				return Item{}, err
			}
			return Item{Alert: a, Key: e.ID, Version: incidentVersion(&e), Time: e.CreatedAt, Acknowledged: e.Acknowledged}, nil
		},
	},
}

// incidentVersion is the fingerprint of what makes an incident event worth sending again: its
// group score, its own score, its group (groups merge) and its acknowledgement. A 64-bit hash
// keeps the remembered versions of a day of events small.
func incidentVersion(e *darktrace.IncidentEvent) string {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatFloat(e.GroupScore.Float64(), 'g', -1, 64) + "/" +
		strconv.FormatFloat(e.AIAScore.Float64(), 'g', -1, 64) + "/" + e.CurrentGroup + "/" +
		strconv.FormatBool(e.Acknowledged)))
	return strconv.FormatUint(h.Sum64(), 16)
}

// recordID reads a record's id for a log line when the record itself would not decode. The
// value is quoted by the logger's JSON encoder, and cut short so a hostile id cannot flood.
func recordID(raw []byte) string {
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) != nil {
		return "?"
	}
	for _, k := range []string{"pbid", "codeid", "id"} {
		if v, ok := probe[k]; ok {
			s := strings.Trim(string(v), `"`)
			if len(s) > 64 {
				s = s[:64]
			}
			return s
		}
	}
	return "?"
}
