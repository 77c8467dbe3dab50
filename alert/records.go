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
	fail := func(err error) error {
		off := skipped + int(dec.InputOffset())
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = skipped + int(se.Offset)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
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
