package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// SplitRecords splits an API response into its records: a JSON array of records, a single
// object, or a sequence of objects (one per line, as "jq -c" writes them). Each record is
// returned compacted exactly as json.Decoder read it (json.RawMessage keeps the bytes). A syntax
// error is reported with its line and column.
func SplitRecords(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	skipped := len(data) - len(trimmed)
	if len(trimmed) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var out []json.RawMessage
	last := 0 // offset just past the last record decoded successfully
	fail := func(err error) error {
		// json.Decoder's SyntaxError offsets are relative to internal buffers; re-scan the
		// failing part with json.Unmarshal, whose offsets are exact (bad byte + 1).
		base := last
		if trimmed[0] == '[' {
			base = 0
		}
		off := skipped + int(dec.InputOffset())
		var v any
		uerr := json.Unmarshal(trimmed[base:], &v)
		var se *json.SyntaxError
		switch {
		case errors.As(uerr, &se) && se.Offset > 0 && uerr.Error() != "unexpected end of JSON input":
			off = skipped + base + int(se.Offset) - 1
			err = uerr
		case uerr != nil && uerr.Error() == "unexpected end of JSON input",
			errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			off = len(data)
			err = errors.New("unexpected end of input")
		}
		line, col := lineCol(data, off)
		return fmt.Errorf("invalid JSON at line %d, column %d (byte %d): %w", line, col, off, err)
	}
	if trimmed[0] == '[' {
		if _, err := dec.Token(); err != nil {
			return nil, fail(err)
		}
		for dec.More() {
			var m json.RawMessage
			if err := dec.Decode(&m); err != nil {
				return nil, fail(err)
			}
			out = append(out, m)
		}
		if _, err := dec.Token(); err != nil {
			return nil, fail(err)
		}
		if _, err := dec.Token(); err != io.EOF {
			if err == nil {
				err = errors.New("data after the closing ']'")
			}
			return nil, fail(err)
		}
		return out, nil
	}
	for {
		var m json.RawMessage
		err := dec.Decode(&m)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fail(err)
		}
		if len(m) == 0 || m[0] != '{' {
			return nil, fail(fmt.Errorf("expected a JSON object or array, found %.20s", m))
		}
		out = append(out, m)
		last = int(dec.InputOffset())
	}
}

// lineCol converts a byte offset into 1-based line and column (in bytes).
func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}
