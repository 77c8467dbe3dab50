// Package source reads one window of one record source from an appliance: it builds the query
// from darktrace's source table, fetches it through a fetch.Fetcher, decodes each record,
// converts it into an alert.Alert, applies the Filter and sorts by (time, key). The live
// poller and backfill both read through it, so both see exactly the same records.
package source

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/fetch"
)

// Filter decides which alerts are forwarded (the FILTER_* variables).
type Filter struct {
	// MinScore drops alerts scoring below it (0–1), after decoding: it is never sent as
	// minscore, so a breach below it still fills its pbid (see darktrace.Sources). Manual
	// Antigena actions carry score 0 and are exempt.
	MinScore float64
	// IncludeAcknowledged forwards breaches and AI Analyst events that are already acknowledged.
	// The query always asks for them (see darktrace.Sources).
	IncludeAcknowledged bool
	// HideSuppressed drops suppressed breaches. A breach record does not say whether it is
	// suppressed, so this one is applied at the query (includesuppressed=false), and each
	// suppressed breach leaves a pbid hole that the gap tracker finds by id and resolves as
	// filtered.
	HideSuppressed bool
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

// Reader is one appliance's read path (fetch → decode → convert → filter → sort), shared by its
// sources. It keeps one request in flight per appliance.
type Reader struct {
	fetcher   fetch.Fetcher
	appliance string
	host      string
	filter    Filter
	log       zerolog.Logger
	inflight  chan struct{}
	anomalies darktrace.AnomalyFunc
}

// ReportAnomalies makes the reader pass the values of unexpected type its tolerant decoders
// find (the record is kept) to fn. Call it before the first fetch.
func (p *Reader) ReportAnomalies(fn darktrace.AnomalyFunc) *Reader {
	p.anomalies = fn
	return p
}

// NewReader returns the read path of one appliance. appliance is its label (DARKTRACE_NAME);
// host is the appliance host used to build links when a record carries none.
func NewReader(f fetch.Fetcher, appliance, host string, filter Filter, log zerolog.Logger) *Reader {
	return &Reader{
		fetcher: f, appliance: appliance, host: host, filter: filter,
		log:      log.With().Str("appliance", appliance).Logger(),
		inflight: make(chan struct{}, 1),
	}
}

// Appliance returns the appliance label.
func (p *Reader) Appliance() string { return p.appliance }

// Exclusive runs fn while holding the appliance's one request slot, so that other requests to
// the same appliance (a clock check against /status) never overlap a poll.
func (p *Reader) Exclusive(ctx context.Context, fn func(ctx context.Context) error) error {
	select {
	case p.inflight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.inflight }()
	return fn(ctx)
}

// With returns a copy of the reader fetching through wrap(its fetcher). With ownSlot the copy
// has a request slot of its own (backfill: it must not wait for the live poller's requests);
// otherwise it shares this reader's slot.
func (p *Reader) With(wrap func(fetch.Fetcher) fetch.Fetcher, ownSlot bool, log zerolog.Logger) *Reader {
	c := *p
	c.fetcher = wrap(p.fetcher)
	if ownSlot {
		c.inflight = make(chan struct{}, 1)
		c.log = log.With().Str("appliance", p.appliance).Logger()
	}
	return &c
}

// Source returns the named source of the darktrace source table.
func (p *Reader) Source(name string) (*Source, error) {
	spec, err := darktrace.SourceNamed(name)
	if err != nil {
		return nil, err
	}
	return &Source{spec: spec, p: p}, nil
}

// Source is one endpoint of one appliance.
type Source struct {
	spec *darktrace.Source
	p    *Reader
	// ranged: the endpoint is asked for a time range even though the live poll reads it
	// without one (backfill's /antigena).
	ranged bool
}

// Ranged returns the source for walking a time range (backfill): breaches and AI Analyst
// events are windowed already; /antigena, read live without a window, gains starttime and
// endtime (the appliance filters them on the action's start).
func (s *Source) Ranged() *Source {
	c := *s
	c.ranged = !s.spec.Windowed
	return &c
}

// Name returns the source name.
func (s *Source) Name() string { return s.spec.Name }

// Windowed reports whether a request reads a time window: the table's live windowing, or a
// Ranged source.
func (s *Source) Windowed() bool { return s.spec.Windowed || s.ranged }

// Query returns the path and query for the window [start, end] (both inclusive, epoch ms),
// with the parameters in the fixed order the signature is computed over.
func (s *Source) Query(start, end time.Time) string {
	return s.spec.Path(darktrace.Query{Start: start.UnixMilli(), End: end.UnixMilli(), Range: s.ranged,
		HideSuppressed: s.p.filter.HideSuppressed})
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
	// action is the decoded Antigena record, kept so that Earlier rebuilds its earlier states
	// without decoding it again.
	action *darktrace.Action
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
	// Present holds every key the response contained, filtered or not: for the window-less
	// Antigena endpoint it decides which remembered states can be forgotten, for breaches it
	// is every pbid listed (the gap tracker's input).
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
	// Records are decoded once the response is complete: a response the cap aborts (the window
	// is then fetched in halves) costs its transfer, not the decoding of every record in it.
	var raws [][]byte
	err := s.p.Exclusive(ctx, func(ctx context.Context) (err error) {
		b.Date, err = s.p.fetcher.StreamDated(ctx, q, func(raw []byte) error {
			raws = append(raws, bytes.Clone(raw))
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, raw := range raws {
		raws[i] = nil // the alert keeps what it needs
		if it, ok := s.admit(b, raw); ok {
			b.Items = append(b.Items, it)
		}
	}
	SortItems(b.Items)
	b.Items = lastListed(b.Items, &b.Stats)
	return b, nil
}

// lastListed keeps a key listed twice in items once, in its last-listed version, counting the
// repeat as deduplicated. It compacts items in place.
func lastListed(items []Item, st *Stats) []Item {
	seen := make(map[string]int, len(items))
	out := items[:0]
	for _, it := range items {
		if i, ok := seen[it.Key]; ok {
			st.Deduped++
			out[i] = it
			continue
		}
		seen[it.Key] = len(out)
		out = append(out, it)
	}
	return out
}

// Stream requests [start, end] like Fetch, for a response too large to hold (a window that
// cannot be split further holds more records than the per-response cap): each record is
// decoded as it arrives and handed to fn in slices, each a Batch of at most each records (its
// Items sorted by (time, key), its Present the keys it listed), the slices in the order of the
// response. The request stays open while fn runs; an error from fn ends it. The Batch returned
// has the counts of the whole response and the Date, and no Items or Present: nothing grows with
// the response. A key listed twice within a slice is handed over once, in its last-listed
// version; across slices, the caller's delivered keys drop the repeat. A record of a source
// that never changes whose id delivered (may be nil) reports is counted as deduplicated without
// being decoded (only its key goes into the slice's Present): a flood read again (a retry, the
// overlap of the next polls) costs a scan of each record, not a decode.
func (s *Source) Stream(ctx context.Context, start, end time.Time, each int, delivered func(key string) bool, fn func(*Batch) error) (*Batch, error) {
	q := s.Query(start, end)
	each = max(each, 1)
	b := &Batch{}
	slice := &Batch{Items: make([]Item, 0, each), Present: make(map[string]struct{}, each)}
	flush := func() error {
		SortItems(slice.Items)
		slice.Items = lastListed(slice.Items, &slice.Stats)
		b.Stats.Fetched += slice.Stats.Fetched
		b.Stats.Malformed += slice.Stats.Malformed
		b.Stats.Filtered += slice.Stats.Filtered
		b.Stats.Deduped += slice.Stats.Deduped
		var err error
		if len(slice.Present) > 0 {
			err = fn(slice)
		}
		clear(slice.Items[:cap(slice.Items)])
		slice.Items = slice.Items[:0]
		clear(slice.Present)
		slice.Stats = Stats{}
		return err
	}
	err := s.p.Exclusive(ctx, func(ctx context.Context) (err error) {
		b.Date, err = s.p.fetcher.StreamDated(ctx, q, func(raw []byte) error {
			if delivered != nil {
				if id, ok := s.spec.PeekID(raw); ok && delivered(id) {
					b.Stats.Fetched++
					b.Stats.Deduped++
					slice.Present[id] = struct{}{}
					if len(slice.Present) >= each {
						return flush()
					}
					return nil
				}
			}
			if it, ok := s.admit(slice, raw); ok {
				slice.Items = append(slice.Items, it)
			}
			if len(slice.Items) >= each || len(slice.Present) >= each {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// admit decodes one record of b's response and counts it: the Item, and whether it passes the
// filter. A record that does not decode is logged with its id and skipped.
func (s *Source) admit(b *Batch, raw []byte) (Item, bool) {
	b.Stats.Fetched++
	it, err := s.decode(raw)
	if err != nil {
		b.Stats.Malformed++
		s.p.log.Warn().Str("source", s.spec.Name).Str("id", darktrace.RecordID(raw)).Err(err).
			Msg("malformed record skipped")
		return Item{}, false
	}
	b.Present[it.Key] = struct{}{}
	if !s.p.filter.allow(&it) {
		b.Stats.Filtered++
		return Item{}, false
	}
	return it, true
}

// SortItems orders items by (time, key). Never trust server order: numeric keys compare as
// numbers, so pbid 10 follows pbid 9.
func SortItems(items []Item) {
	slices.SortStableFunc(items, func(x, y Item) int {
		if c := cmp.Compare(x.Time, y.Time); c != 0 {
			return c
		}
		return CompareKeys(x.Key, y.Key)
	})
}

// decode turns one record into an Item through the source table and the alert conversion.
func (s *Source) decode(raw []byte) (Item, error) {
	rec, err := s.spec.Decode(raw, s.p.anomalies)
	if err != nil {
		return Item{}, err
	}
	a, err := alert.FromRecord(rec, raw, s.p.appliance, s.p.host)
	if err != nil {
		return Item{}, err
	}
	it := Item{Alert: a, Key: rec.RecordKey(), Version: rec.RecordVersion(), Time: rec.RecordTime(), Acknowledged: rec.RecordAcked()}
	it.action, _ = rec.(*darktrace.Action)
	return it, nil
}

// FetchPBID asks the appliance for one breach by pbid (modelbreaches only) and returns its
// creation time; found is false when the appliance does not have it (an empty object or list).
// A record that does not decode is logged and reported found with created 0.
func (s *Source) FetchPBID(ctx context.Context, pbid int64) (created int64, found bool, err error) {
	if s.spec.Name != darktrace.SourceBreaches {
		return 0, false, fmt.Errorf("source: %s has no pbids", s.spec.Name)
	}
	err = s.p.Exclusive(ctx, func(ctx context.Context) error {
		_, err := s.p.fetcher.StreamDated(ctx, darktrace.PBIDPath(pbid), func(raw []byte) error {
			var b darktrace.Breach
			if err := json.Unmarshal(raw, &b); err != nil {
				s.p.log.Warn().Str("source", s.spec.Name).Int64("id", pbid).Err(err).Msg("malformed record skipped")
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

// Earlier returns the states of an Antigena action (an Item this source read) that its history
// records after since and that the record no longer shows, oldest first, as items like it
// (see darktrace.Action.EarlierSteps); missed counts the states after since that the history
// cannot give back. Other sources have no history: nil, 0.
func (s *Source) Earlier(it Item, since darktrace.ActionVersion) (items []Item, missed int) {
	if s.spec.Name != darktrace.SourceAntigena || it.Alert == nil || it.action == nil {
		return nil, 0
	}
	steps, missed, err := it.action.EarlierSteps(it.Alert.Raw, since)
	for i := range steps {
		st := &steps[i]
		a, cerr := alert.FromAction(&st.Action, st.Raw, s.p.appliance, s.p.host)
		if cerr != nil {
			err = cerr
			break
		}
		items = append(items, Item{Alert: a, Key: it.Key, Version: st.Action.RecordVersion(),
			Time: st.Action.RecordTime(), Acknowledged: it.Acknowledged, action: &st.Action})
	}
	if err != nil {
		// The record decoded once already; a history that cannot be rebuilt costs only the
		// earlier states, which are counted as missed.
		s.p.log.Warn().Str("source", s.spec.Name).Str("id", it.Key).Err(err).
			Msg("earlier states of an Antigena action could not be rebuilt from its history")
		return nil, max(missed, 1)
	}
	return items, missed
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

// CompareKeys orders record keys: numeric keys as numbers (pbid 10 follows pbid 9), others as
// strings.
func CompareKeys(a, b string) int {
	ai, aerr := strconv.ParseInt(a, 10, 64)
	bi, berr := strconv.ParseInt(b, 10, 64)
	if aerr == nil && berr == nil {
		return cmp.Compare(ai, bi)
	}
	return strings.Compare(a, b)
}
