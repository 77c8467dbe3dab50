package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// streamSink writes framed lines to an io.Writer (stdout) or an append-only file.
type streamSink struct {
	hdr   *header
	hooks Hooks
	mu    sync.Mutex // guards out/file against Reopen from a signal handler
	out   io.Writer
	file  *os.File // nil for stdout
	path  string
	buf   []byte
	cutTo int64 // >= 0: a failed write left bytes past this size; cut them before writing
}

// fileMode is used when the sink creates the file: alerts are sensitive, so no world access,
// but a log shipper's group may read them.
const fileMode = 0o640

func newStdout(cfg Config) (Sink, error) {
	out := cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	return &streamSink{hdr: newHeader(cfg, cfg.Framing), hooks: cfg.Hooks, out: out}, nil
}

func newFile(cfg Config) (Sink, error) {
	s := &streamSink{hdr: newHeader(cfg, cfg.Framing), hooks: cfg.Hooks, path: cfg.Address, cutTo: -1}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *streamSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("sink: opening %w", err)
	}
	s.file, s.out = f, f
	return nil
}

// Send writes the whole batch with one write and, for a file, fsyncs it: when Send returns
// nil the lines are on disk, so the caller may move its checkpoint. A failed write leaves no
// partial line in the file (writeFile).
func (s *streamSink) Send(ctx context.Context, msgs []Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return s.fail(errors.New("sink: Send after Close"))
	}
	buf := s.buf[:0]
	sanitized := 0
	for i := range msgs {
		line, changed := cleanLine(msgs[i].Line)
		if changed {
			sanitized++
		}
		buf = s.hdr.appendFramed(buf, s.hdr.pri(msgs[i].Severity), msgs[i].Kind, line)
	}
	s.buf = buf
	if sanitized > 0 && s.hooks.Sanitized != nil {
		s.hooks.Sanitized(sanitized)
	}
	if s.file != nil {
		if err := s.writeFile(buf); err != nil {
			return s.fail(err)
		}
	} else if _, err := s.out.Write(buf); err != nil {
		return s.fail(fmt.Errorf("sink: writing: %w", err))
	}
	if s.hooks.Sent != nil {
		s.hooks.Sent(len(msgs), len(buf))
	}
	return nil
}

// writeFile appends buf, the whole batch, and fsyncs it. When the write fails part-way (a
// full volume makes write(2) short, then ENOSPC) or the fsync fails, the file is cut back to
// its size before the batch, so the retried batch follows the last complete line instead of
// being glued to a fragment. A cut that fails is retried before the next batch is written.
func (s *streamSink) writeFile(buf []byte) error {
	if s.cutTo >= 0 {
		if err := s.file.Truncate(s.cutTo); err != nil {
			return fmt.Errorf("sink: removing the partial batch left by a failed write: %w", err)
		}
		s.cutTo = -1
	}
	st, err := s.file.Stat()
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	before := st.Size()
	if _, err := s.file.Write(buf); err != nil {
		s.cut(before)
		return fmt.Errorf("sink: writing: %w", err)
	}
	if err := s.file.Sync(); err != nil {
		s.cut(before)
		return fmt.Errorf("sink: syncing: %w", err)
	}
	return nil
}

// cut truncates the file to size, or remembers to do so before the next write.
func (s *streamSink) cut(size int64) {
	if err := s.file.Truncate(size); err != nil {
		s.cutTo = size
	}
}

func (s *streamSink) fail(err error) error {
	if s.hooks.Error != nil {
		s.hooks.Error(err)
	}
	return err
}

// Reopen closes the file and opens the configured path again (creating it when logrotate
// moved it away). For stdout it does nothing.
func (s *streamSink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	old := s.file
	if err := s.open(); err != nil {
		return err
	}
	s.cutTo = -1 // a new file: the pending cut was for the old one
	return old.Close()
}

// Close closes the file; for stdout it does nothing (the process owns stdout).
func (s *streamSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		s.out = nil
		return nil
	}
	err := s.file.Close()
	s.file, s.out = nil, nil
	return err
}
