package hec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dtforward/dtforward/sink"
)

// ackQuery and ackAnswer are the acknowledgement endpoint's request and answer.
type ackQuery struct {
	Acks []int64 `json:"acks"`
}

type ackAnswer struct {
	Acks map[string]bool `json:"acks"`
}

// queryAcks asks which of ids are indexed.
func (s *Sink) queryAcks(ctx context.Context, ids []int64) (map[int64]bool, error) {
	body, _ := json.Marshal(ackQuery{Acks: ids})
	resp, err := s.do(ctx, AckPath, body, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, s.answerErr(resp)
	}
	var a ackAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return nil, fmt.Errorf("%s: unreadable acknowledgement answer: %w", service, err)
	}
	out := make(map[int64]bool, len(a.Acks))
	for k, v := range a.Acks {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil {
			out[id] = v
		}
	}
	return out, nil
}

// AckTimeoutError reports requests whose acknowledgement did not come in time: the indexer
// may have restarted or dropped them. The caller sends the batch again; what was acknowledged
// is not sent twice.
type AckTimeoutError struct {
	Requests, Events int
	Waited           time.Duration
	Last             error // the last failed query, if any
}

func (e *AckTimeoutError) Error() string {
	msg := fmt.Sprintf("%s did not acknowledge %d requests (%d events) within %s (indexer restarted or acknowledgement expired?); sending them again",
		service, e.Requests, e.Events, e.Waited)
	if e.Last != nil {
		msg += "; last query: " + e.Last.Error()
	}
	return msg
}

func (e *AckTimeoutError) Unwrap() error { return e.Last }

// waitAcks polls the acknowledgement endpoint until every request is acknowledged, the ack
// timeout passes, or ctx ends. Failed queries are retried within the timeout, except answers
// only an operator can fix.
func (s *Sink) waitAcks(ctx context.Context, reqs []*request) error {
	if len(reqs) == 0 {
		return nil
	}
	deadline := time.Now().Add(s.cfg.AckTimeout)
	wait := s.cfg.PollInterval
	var last error
	for {
		var ids []int64
		for _, r := range reqs {
			if !r.acked {
				ids = append(ids, r.ackID)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			e := &AckTimeoutError{Requests: len(ids), Waited: s.cfg.AckTimeout, Last: last}
			for _, r := range reqs {
				if !r.acked {
					e.Events += len(r.idx)
				}
			}
			return e
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
		got, err := s.queryAcks(ctx, ids)
		if err != nil {
			var ce *sink.ConfigError
			if errors.As(err, &ce) || ctx.Err() != nil {
				return err
			}
			last = err
			continue
		}
		for _, r := range reqs {
			if !r.acked && got[r.ackID] {
				r.acked = true
			}
		}
	}
}
