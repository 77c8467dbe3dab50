// Package deadletter keeps the records a sink could not take: one JSON line per record, in a
// file of the sink's state directory, written and fsynced before the caller moves its
// checkpoint past the record. A dead letter is a record set aside, never a record lost: it can
// be read, replayed and counted.
package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileName is the dead-letter file in a sink's state directory.
const FileName = "dead-letters.jsonl"

// DefaultMaxBytes bounds the file when the caller sets no bound: far more than a poison
// message a day for years, far less than a volume.
const DefaultMaxBytes = 64 << 20

// Reasons a record is set aside; the values of the reason label of dtforward_dead_letters_total.
const (
	ReasonRefused       = "refused"       // the receiver refused it, SIEM_POISON_RETRIES times
	ReasonUnformattable = "unformattable" // the format could not render it, even as a fallback
	ReasonTooLarge      = "too_large"     // larger than the transport can ever carry
)

// Record is one line of the dead-letter file.
type Record struct {
	Time      time.Time `json:"time"` // when it was set aside
	Sink      string    `json:"sink"`
	Appliance string    `json:"appliance"`
	Kind      string    `json:"kind"` // modelbreach, antigena, aianalyst
	ID        string    `json:"id"`   // pbid, codeid or incident event id
	Reason    string    `json:"reason"`
	// Answer is what the receiver or the formatter said (a RELP "500 …" text, an HTTP body,
	// the formatter's error).
	Answer string `json:"answer,omitempty"`
	// Line is the formatted line as it would have been sent, when there is one; Record is the
	// record as the appliance sent it, when there is no line.
	// RecordText holds the record instead when it is not JSON encoding/json can carry (nested
	// deeper than its limit, invalid UTF-8).
	Line       string          `json:"line,omitempty"`
	Record     json.RawMessage `json:"record,omitempty"`
	RecordText string          `json:"record_text,omitempty"`
}

// ErrFull is returned when a record does not fit in the file's bound. Nothing is dropped: the
// caller keeps the record (and its checkpoint) until an operator makes room.
var ErrFull = errors.New("dead-letter file is full")

// File appends records to one dead-letter file. It is safe for concurrent use. The file is
// created on the first record, so a sink that never sets anything aside leaves no file.
type File struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// New returns the dead-letter file dir/FileName bounded to maxBytes (0: DefaultMaxBytes).
func New(dir string, maxBytes int64) *File {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &File{path: filepath.Join(dir, FileName), max: maxBytes}
}

// Path is the file's path, for logs and the README's replay instructions.
func (d *File) Path() string { return d.path }

// Write appends r as one line and fsyncs it. When the line would take the file past its bound
// it returns an error wrapping ErrFull and writes nothing; a failed or short write is cut
// back, so the file never holds a partial line.
func (d *File) Write(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("dead letter: encoding: %w", err)
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if err := d.open(); err != nil {
			return err
		}
	}
	if d.size+int64(len(line)) > d.max {
		d.close() // reopened on the next record: the operator may have moved it away meanwhile
		return fmt.Errorf("%w: %s holds %d bytes, the bound is %d; move it away (it is reopened on the next record)",
			ErrFull, d.path, d.size, d.max)
	}
	if n, err := d.f.Write(line); err != nil {
		if n > 0 {
			_ = d.f.Truncate(d.size)
		}
		d.close()
		return fmt.Errorf("dead letter: writing %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		_ = d.f.Truncate(d.size)
		d.close()
		return fmt.Errorf("dead letter: syncing %s: %w", d.path, err)
	}
	d.size += int64(len(line))
	return nil
}

// open opens (or reopens, after a failure or when an operator moved the file away) the file
// and learns its size.
func (d *File) open() error {
	if err := os.MkdirAll(filepath.Dir(d.path), 0o750); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) // alerts: the operator only
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("dead letter: %w", err)
	}
	d.f, d.size = f, st.Size()
	return nil
}

func (d *File) close() {
	if d.f != nil {
		_ = d.f.Close()
		d.f = nil
	}
}

// Close closes the file.
func (d *File) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
