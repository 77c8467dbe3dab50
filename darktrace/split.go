package darktrace

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// callbackError carries an error returned by the caller's fn through decodeElements, so Stream
// returns it unchanged instead of classifying it as a body error.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// decodeElements reads one JSON array from r and calls fn with the raw bytes of each element,
// or, when the body is a single object, calls fn once with it. The body is never held whole:
// one reused buffer holds the current element, so memory tracks the largest record, not the
// response.
//
// An element already in the read buffer is checked and delimited in one pass (validValue);
// any other is found by a bracket-and-string scan and then checked once with validJSON. Both
// accept exactly what json.Valid accepts, several times faster (json.Decoder scanned every
// element twice; json.Valid was then a third of the CPU of a catch-up). Whatever json.Decoder
// rejected is still rejected.
//
// It returns the number of elements passed to fn and the input offset reached (for messages).
// A syntax error, truncation or trailing data is returned as is (isDecodeError); an error from
// fn comes back as callbackError; a read error comes back unchanged.
//
// An array element whose extent is known but which is not valid JSON (nested deeper than
// encoding/json allows, a stray comma inside it) costs only that element: bad (may be nil: the
// element fails the body as before) gets its position in the array and the error, and the
// elements after it are read on. The scan is iterative and keeps one element in memory, so
// no nesting depth can exhaust the stack.
//
// A string longer than maxString bytes (0: no limit) is cut there, ending in "…", and the
// element is handed on with trimmed (may be nil) told its position, what was dropped and the
// element: a 20 MB description costs 64 KiB, not several copies of 20 MB. Likewise an array, at
// any depth, whose elements take more than maxArray bytes (0: no limit) keeps its first
// elements up to that budget (its first element always, so a list of devices keeps one) and
// drops the rest: a model with five million tags costs maxArray bytes, not 200 MB held and
// decoded. Each element dropped is checked as it goes, so a record is malformed or not whether
// or not it was cut.
func decodeElements(br *bufio.Reader, fn func(raw []byte) error, bad func(index int, raw []byte, err error),
	maxString, maxArray int, trimmed func(index int, raw []byte, cut cutCount)) (n int, offset int64, err error) {
	first, err := firstByte(br)
	if err != nil {
		return 0, 0, err
	}
	sp := &splitter{br: br, maxString: maxString, maxArray: maxArray}
	call := func(raw []byte) error {
		if err := fn(raw); err != nil {
			return callbackError{err}
		}
		n++
		return nil
	}
	switch first {
	case '{':
		// One record (pbid=) or a small summary: the whole body is checked before fn sees it.
		raw, err := sp.element()
		if err != nil {
			return 0, sp.off, err
		}
		if err := sp.expectEOF(); err != nil {
			return 0, sp.off, err
		}
		return n, sp.off, call(raw)
	case '[':
	default:
		return 0, 0, fmt.Errorf("expected a JSON array or object, got %q: %w", first, errNotContainer)
	}
	_, _ = br.ReadByte() // '['
	sp.off++
	c, err := sp.next()
	if err != nil {
		return 0, sp.off, err
	}
	if c == ']' {
		_, _ = br.ReadByte()
		sp.off++
		return 0, sp.off, sp.expectEOF()
	}
	for index := 0; ; index++ {
		raw, err := sp.element()
		var me *malformedElement
		switch {
		case err == nil:
			if (sp.dropped > 0 || sp.elemsDropped > 0) && trimmed != nil {
				trimmed(index, raw, cutCount{stringBytes: sp.dropped, arrayElements: sp.elemsDropped})
			}
			if err := call(raw); err != nil {
				return n, sp.off, err
			}
		case bad != nil && errors.As(err, &me):
			bad(index, me.raw, me.err)
		default:
			return n, sp.off, err
		}
		c, err := sp.next()
		if err != nil {
			return n, sp.off, err
		}
		_, _ = br.ReadByte()
		sp.off++
		switch c {
		case ',':
			if _, err := sp.next(); err != nil {
				return n, sp.off, err
			}
		case ']':
			return n, sp.off, sp.expectEOF()
		default:
			return n, sp.off, fmt.Errorf("%w: %q after an array element at byte %d", errSyntaxSplit, c, sp.off-1)
		}
	}
}

// errSyntaxSplit: the array around the elements is malformed (missing comma, trailing comma…).
var errSyntaxSplit = errors.New("invalid JSON")

// splitter cuts elements out of a buffered body.
type splitter struct {
	br  *bufio.Reader
	buf []byte // the current element, reused
	off int64  // bytes consumed
	// maxString cuts longer strings (0: no limit); dropped counts the bytes the current
	// element lost to it; bad says what was invalid in them (nil: nothing).
	maxString int
	dropped   int64
	bad       error
	// maxArray cuts longer arrays (0: no limit); elemsDropped counts the elements the current
	// element's arrays lost to it. frames are its open containers, reused.
	maxArray     int
	elemsDropped int64
	frames       []frame
}

// cutCount is what an element lost to the splitter's limits.
type cutCount struct {
	stringBytes   int64 // bytes of strings past maxString
	arrayElements int64 // elements of arrays past maxArray
}

// frame is a container open in the element being scanned. Offsets are into splitter.buf.
type frame struct {
	kind     byte // '{' or '['
	start    int  // an array's first byte after its '['
	keep     int  // the end of its last element kept (start: none yet)
	elems    int  // elements ended, kept or not
	dropping bool // past maxArray: each further element is checked, then dropped
}

// ellipsis ends a string cut at maxString bytes.
const ellipsis = "…"

// next skips whitespace and returns the next byte without consuming it; the end of the body
// is io.ErrUnexpectedEOF (a value was due).
func (s *splitter) next() (byte, error) {
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = s.br.ReadByte()
			s.off++
		default:
			return b[0], nil
		}
	}
}

// element reads the value at the reader (whitespace already skipped) into s.buf and checks it.
// Past maxString bytes of a string, its bytes are checked by the rule of the bytes kept
// (stringRest) and skipped up to the closing quote; the cut falls before a character, never
// inside an escape or a UTF-8 sequence, so the element stays valid. Past maxArray bytes of an
// array, each further element is read (its own strings and arrays cut), checked by the rule of
// the whole (validJSON) and dropped (endElement); the array is closed after its last element
// kept, so the element stays valid.
func (s *splitter) element() ([]byte, error) {
	s.buf = s.buf[:0]
	s.dropped, s.bad = 0, nil
	s.elemsDropped, s.frames = 0, s.frames[:0]
	c, err := s.next()
	if err != nil {
		return nil, err
	}
	if c == '{' || c == '[' {
		// The common case, a record already read whole into the buffer and no longer than
		// maxString or maxArray (so nothing of it is cut): one pass checks it and finds its end. A
		// record not yet read whole (nothing more is waited for here: a record is handed on as
		// soon as it arrived), a longer one, or one that is not valid JSON takes the scan
		// below, which cuts long strings and finds the extent of an invalid record too.
		chunk, _ := s.br.Peek(s.br.Buffered())
		if end := validValue(chunk); end > 0 && (s.maxString == 0 || end <= s.maxString) &&
			(s.maxArray == 0 || end <= s.maxArray) {
			s.buf = append(s.buf, chunk[:end]...)
			_, _ = s.br.Discard(end)
			s.off += int64(end)
			return s.buf, nil
		}
	}
	depth, inStr, esc := 0, false, false
	hex, strLen, cutting := 0, 0, false // \u digits still due; bytes of the current string kept; past maxString
	literal := c != '{' && c != '[' && c != '"'
	need := 1 // bytes to have buffered before the next pass: more when an escape was cut short
	for {
		if _, err := s.br.Peek(need); err != nil {
			if errors.Is(err, io.EOF) {
				if literal && len(s.buf) > 0 {
					return s.check()
				}
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		chunk, _ := s.br.Peek(s.br.Buffered())
		end, from, used := -1, 0, len(chunk)
		need = 1
	scan:
		for i := 0; i < len(chunk); i++ {
			b := chunk[i]
			switch {
			case inStr:
				// The cut falls before a character: not inside an escape nor a UTF-8 sequence.
				// A sequence is at most 4 bytes long, so a continuation byte 3 bytes past the
				// limit is invalid UTF-8, which has no character to keep whole: the cut falls
				// there, or a run of them would be kept whole, however long.
				if !cutting && s.maxString > 0 && strLen >= s.maxString && !esc && hex == 0 && b != '"' &&
					(b < 0x80 || b >= 0xc0 || strLen >= s.maxString+3) {
					s.buf = append(s.buf, chunk[from:i]...)
					s.buf = append(s.buf, ellipsis...)
					cutting = true
				}
				if cutting && s.bad == nil {
					// The dropped bytes are checked by the rule of every kept string, so a
					// record is malformed or not whether or not it was cut. No escape is open at
					// i: it is the cut, or where the last pass stopped.
					j, st := stringRest(chunk, i)
					s.dropped += int64(j - i)
					switch st {
					case strPartial:
						// Go on at the escape chunk ended inside, once it is whole.
						used, need = j, len(chunk)-j+1
						break scan
					case strEnded:
						i, b = j-1, '"' // the closing quote, taken below
						s.dropped--
					default:
						// The element's end is found by the scan below, as any invalid
						// record's is; it is read to there, then reported malformed.
						s.bad = fmt.Errorf("%w: %s at byte %d, in a string past its first %d bytes",
							errSyntaxSplit, badInString(chunk[j:]), s.off+int64(j), s.maxString)
						i, b = j, chunk[j]
					}
				}
				if cutting {
					s.dropped++
				} else {
					strLen++
				}
				switch {
				case hex > 0:
					hex--
				case esc:
					esc = false
					if b == 'u' {
						hex = 4
					}
				case b == '\\':
					esc = true
				case b == '"':
					inStr = false
					if cutting {
						cutting, from = false, i
						s.dropped--
					}
					if depth == 0 {
						end = i + 1
						break scan
					}
				}
			case literal:
				switch b {
				case ',', ']', '}', ' ', '\t', '\r', '\n', '[', '{', '"':
					end = i
					break scan
				}
			case b == '"':
				inStr, strLen = true, 0
			case b == '{' || b == '[':
				depth++
				switch {
				case depth > maxNesting:
					// What a dropped element holds counts too: the record is as deep uncut.
					if s.bad == nil {
						s.bad = fmt.Errorf("%w: exceeded max depth at byte %d", errSyntaxSplit, s.off+int64(i))
					}
				case s.maxArray > 0:
					at := len(s.buf) + i + 1 - from
					s.frames = append(s.frames, frame{kind: b, start: at, keep: at})
				}
			case b == ',' && s.maxArray > 0 && depth <= maxNesting && s.frames[depth-1].kind == '[':
				from = s.endElement(chunk, from, i)
			case b == '}' || b == ']':
				if s.maxArray > 0 && depth >= 1 && depth <= maxNesting {
					if f := &s.frames[depth-1]; f.kind == '[' {
						from = s.endElement(chunk, from, i)
						if f.dropping && b != ']' && s.bad == nil {
							s.bad = fmt.Errorf("%w: '}' closes an array at byte %d", errSyntaxSplit, s.off+int64(i))
						}
					}
					s.frames = s.frames[:depth-1]
				}
				depth--
				if depth <= 0 {
					end = i + 1
					break scan
				}
			}
		}
		if end >= 0 {
			s.buf = append(s.buf, chunk[from:end]...)
			_, _ = s.br.Discard(end)
			s.off += int64(end)
			return s.check()
		}
		if !cutting {
			s.buf = append(s.buf, chunk[from:]...)
		}
		_, _ = s.br.Discard(used)
		s.off += int64(used)
	}
}

// endElement is called at the ',' or closing bracket at chunk[i] that ends an element of the
// array on top of s.frames (the bytes of chunk from `from` are not yet in s.buf); it returns
// where those still to copy start. An element that does not fit the array's maxArray bytes,
// and every one after it, is checked (the separators between them too: a missing or extra
// comma makes an element that is not one value) and dropped with the ',' before it.
func (s *splitter) endElement(chunk []byte, from, i int) int {
	f := &s.frames[len(s.frames)-1]
	e := len(s.buf) + i - from
	f.elems++
	if !f.dropping && (f.elems == 1 || e-f.start <= s.maxArray) {
		f.keep = e // the first element is always kept: a list of devices keeps one
		return from
	}
	s.buf = append(s.buf, chunk[from:i]...)
	el := s.buf[f.keep:]
	if !f.dropping {
		el = el[1:] // the ',' after the last element kept
		// The elements kept are checked with the record, but "[" and "]" around an empty
		// first one ("[, 1]" cut) would pass: that ',' separates nothing.
		if s.bad == nil && skipWS(s.buf, f.start) == f.keep {
			s.bad = fmt.Errorf("%w: ',' before any element at byte %d", errSyntaxSplit, s.off+int64(i-len(el)-1))
		}
	}
	if s.bad == nil && !validJSON(el) {
		s.bad = invalidJSON(el, s.off+int64(i-len(el)))
	}
	s.buf = s.buf[:f.keep]
	f.dropping = true
	s.elemsDropped++
	if chunk[i] == ',' {
		return i + 1
	}
	return i
}

// badInString names what stringRest refused at the start of b: a control character or an
// escape (as much of it as b holds).
func badInString(b []byte) string {
	if b[0] != '\\' {
		return fmt.Sprintf("invalid character %q", b[0])
	}
	n := 2
	if len(b) > 1 && b[1] == 'u' {
		n = 6
	}
	return fmt.Sprintf("invalid escape %q", b[:min(n, len(b))])
}

// check validates the element; on failure encoding/json says what is wrong, in a
// *malformedElement (the element was read to its end: the body can go on after it).
func (s *splitter) check() ([]byte, error) {
	if s.bad != nil {
		return nil, &malformedElement{raw: s.buf, err: s.bad}
	}
	if validJSON(s.buf) {
		return s.buf, nil
	}
	return nil, &malformedElement{raw: s.buf, err: invalidJSON(s.buf, s.off-int64(len(s.buf)))}
}

// invalidJSON says what encoding/json finds wrong in b, which validJSON refused; off is where b
// starts in the body.
func invalidJSON(b []byte, off int64) error {
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return fmt.Errorf("%w: element at byte %d", errSyntaxSplit, off)
}

// malformedElement is an element read to its end that is not valid JSON.
type malformedElement struct {
	raw []byte // valid until the next element is read
	err error
}

func (e *malformedElement) Error() string { return e.err.Error() }
func (e *malformedElement) Unwrap() error { return e.err }

// MalformedRecord is an element of an appliance's answer that was skipped because it is not
// valid JSON (Config.OnMalformed); the elements around it were delivered.
type MalformedRecord struct {
	Endpoint string // e.g. /modelbreaches
	Index    int    // position in the answer's array, from 0
	ID       string // its pbid, codeid or id when one could be read (sanitized), else ""
	Err      error
	// Cuts, for a record forwarded cut (Config.OnTrimmed), names each kind of cut, e.g.
	// "string over 64 KiB", "array over 1 MiB": a metrics label, one per limit.
	Cuts []string
}

// sizeLabel writes a limit for a label: "64 KiB", "1 MiB", else bytes.
func sizeLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// expectEOF fails when anything but whitespace follows the top-level value.
func (s *splitter) expectEOF() error {
	c, err := s.next()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("unexpected %q after the top-level value: %w", c, errTrailingData)
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

var errTrailingData = errors.New("trailing data")
