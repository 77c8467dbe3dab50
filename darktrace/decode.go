package darktrace

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// callbackError carries an error returned by the caller's fn through decodeElements, so Stream
// returns it unchanged instead of classifying it as a body error.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// decodeElements reads one JSON array from r and calls fn with the raw bytes of each element,
// or, when the body is a single object, calls fn once with it. The body is never held whole:
// json.Decoder keeps a buffer about the size of the current element, and raw is one reused
// array, so memory tracks the largest record, not the response.
//
// It returns the number of elements passed to fn and the input offset reached (for messages).
// A syntax error, truncation or trailing data is returned as is (isDecodeError); an error from
// fn comes back as callbackError.
func decodeElements(br *bufio.Reader, fn func(raw []byte) error) (n int, offset int64, err error) {
	first, err := firstByte(br)
	if err != nil {
		return 0, 0, err
	}
	dec := json.NewDecoder(br)
	var raw json.RawMessage // reused: RawMessage.UnmarshalJSON appends into the same array
	call := func() error {
		if err := fn(raw); err != nil {
			return callbackError{err}
		}
		n++
		return nil
	}
	switch first {
	case '{':
		// One record (pbid=) or a small summary: holding it whole is fine. The whole body is
		// checked before fn sees anything.
		if err := dec.Decode(&raw); err != nil {
			return 0, dec.InputOffset(), err
		}
		if err := expectEOF(dec); err != nil {
			return 0, dec.InputOffset(), err
		}
		return n, dec.InputOffset(), call()
	case '[':
	default:
		return 0, 0, fmt.Errorf("expected a JSON array or object, got %q: %w", first, errNotContainer)
	}
	if _, err := dec.Token(); err != nil { // '['
		return 0, dec.InputOffset(), err
	}
	for dec.More() {
		if err := dec.Decode(&raw); err != nil {
			return n, dec.InputOffset(), err
		}
		if err := call(); err != nil {
			return n, dec.InputOffset(), err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return n, dec.InputOffset(), err
	}
	if err := expectEOF(dec); err != nil {
		return n, dec.InputOffset(), err
	}
	return n, dec.InputOffset(), nil
}

// errNotContainer: the body is JSON but neither an array nor an object.
var errNotContainer = errors.New("not an array or object")

// firstByte skips JSON whitespace and returns the next byte without consuming it.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
		default:
			return b[0], nil
		}
	}
}

// BadRecord describes an array element that did not decode into the record type; it was
// skipped. ID is the record's pbid/codeid/id when one could be read (sanitized for logs).
type BadRecord struct {
	Index int
	ID    string
	Err   error
}

// Records is Stream + tolerant decoding into T: fn gets each decoded record (rec is a fresh
// value the caller may keep; raw is valid only during the call, copy it to keep it).
// Breach, Action and IncidentEvent are decoded by DecodeBreach, DecodeAction and
// DecodeIncidentEvent: a value of an unexpected type costs only that value (reported to the
// client's Config.Anomalies), never the record. Other types go through encoding/json. An
// element that does not decode at all (not an object, or for other types a type error) is
// passed to bad (may be nil) and skipped, as is a record without a usable id, so one malformed record does not hold back the rest.
func Records[T any](ctx context.Context, c *Client, pathAndQuery string, fn func(rec *T, raw []byte) error, bad func(BadRecord)) error {
	i := 0
	return c.Stream(ctx, pathAndQuery, func(raw []byte) error {
		idx := i
		i++
		rec := new(T)
		if err := decodeRecord(raw, rec, c.anoms); err != nil {
			if bad != nil {
				bad(BadRecord{Index: idx, ID: recordID(raw), Err: err})
			}
			return nil
		}
		return fn(rec, raw)
	})
}

// decodeRecord decodes raw into rec with the tolerant decoder of its type, or encoding/json.
// A Breach, Action or IncidentEvent without a usable id is an error (errNoID): it cannot be
// deduplicated or linked.
func decodeRecord(raw []byte, rec any, anomalies AnomalyFunc) error {
	var err error
	switch r := rec.(type) {
	case *Breach:
		if *r, err = DecodeBreach(raw, anomalies); err == nil && r.PBID <= 0 {
			err = fmt.Errorf("pbid: %w", errNoID)
		}
	case *Action:
		if *r, err = DecodeAction(raw, anomalies); err == nil && r.CodeID <= 0 {
			err = fmt.Errorf("codeid: %w", errNoID)
		}
	case *IncidentEvent:
		if *r, err = DecodeIncidentEvent(raw, anomalies); err == nil && strings.TrimSpace(r.ID) == "" {
			err = fmt.Errorf("id: %w", errNoID)
		}
	default:
		err = json.Unmarshal(raw, rec)
	}
	return err
}

var errNoID = errors.New("record has no usable id")

// expectEOF fails when anything but whitespace follows the top-level value.
func expectEOF(dec *json.Decoder) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("unexpected %v after the top-level value: %w", tok, errTrailingData)
}

var errTrailingData = errors.New("trailing data")

// recordID reads pbid, codeid or id from an element that failed to decode, for the log line.
func recordID(raw []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range []string{"pbid", "codeid", "id"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			return sanitizeID(s)
		}
		var n json.Number
		if json.Unmarshal(v, &n) == nil {
			return sanitizeID(n.String())
		}
	}
	return ""
}

// sanitizeID keeps an attacker-controlled id short and printable, so it cannot break a log line.
func sanitizeID(s string) string {
	const max = 64
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
