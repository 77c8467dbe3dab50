package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
)

// runFormat converts API JSON (a file or stdin) into one output line per record, exactly as run
// would send it (same tolerant decoding, same line limit). Records that cannot be converted
// (no usable id) and lines that are not JSON are reported on stderr with their line number and
// skipped; the rest are printed. Exit 0 when every record was printed, 1 when the input held no
// record or something was skipped, 2 for usage errors.
func runFormat(_ context.Context, e *env) int {
	defMax, err := defaultMaxBytes(e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward format: %v\n", err)
		return exitUsage
	}
	fs := newFlags(e, "format", func(w io.Writer) {
		fmt.Fprint(w, "Usage: dtforward format [flags] [FILE|-]\n\nReads a Darktrace API response (a JSON array, one object, or one object per line)\nfrom FILE or stdin and prints one line per record.\n")
	})
	format := fs.String("format", "cef", "output format: "+strings.Join(formatter.Names(), ", "))
	source := fs.String("source", "", "record type: "+strings.Join(alert.Sources(), ", ")+" (default: recognised per record)")
	appliance := fs.String("appliance", "", "appliance label written into the output (default: $DARKTRACE_NAME)")
	host := fs.String("host", "", "appliance host for URLs the records lack (default: host of $DARKTRACE_URL)")
	maxBytes := fs.Int("max-bytes", defMax, "trim lines longer than this many bytes, as run does ($SIEM_MAX_MESSAGE_BYTES when set; 0: no limit)")
	leefVersion := fs.String("leef-version", "2.0", "LEEF version: 2.0 or 1.0")
	if code, ok := fs.parse(); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(e.stderr, "dtforward format: at most one input file, got %d\n", fs.NArg())
		return exitUsage
	}
	if *source != "" && !contains(alert.Sources(), *source) {
		fmt.Fprintf(e.stderr, "dtforward format: --source %q is not one of %s\n", *source, strings.Join(alert.Sources(), ", "))
		return exitUsage
	}
	f, err := formatter.New(*format, formatter.Options{Version: version, LEEFVersion: *leefVersion, MaxBytes: *maxBytes})
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward format: %v\n", err)
		return exitUsage
	}
	if *appliance == "" {
		*appliance = e.getenv("DARKTRACE_NAME")
	}
	if *host == "" {
		*host = hostOf(e.getenv("DARKTRACE_URL"))
	}
	if *appliance == "" {
		*appliance = *host
	}

	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	data, err := readInput(name, e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward format: %v\n", err)
		return exitFailure
	}
	items := splitInput(data)
	if len(items) == 0 {
		fmt.Fprintf(e.stderr, "dtforward format: %s: no records in the input (expected a JSON array, one object, or one object per line)\n", name)
		return exitFailure
	}
	out := bufio.NewWriter(e.stdout)
	var line []byte
	skipped := 0
	warned := map[string]bool{} // source/field: one note per field, not per record
	var anoms []darktrace.Anomaly
	records, bad := 0, 0
	for _, rec := range items {
		if rec.bad != "" {
			bad++
			fmt.Fprintf(e.stderr, "dtforward format: %s: %s\n", name, rec.bad)
			continue
		}
		records++
		anoms = anoms[:0]
		a, err := alert.DecodeReporting(*source, rec.raw, *appliance, *host, func(an darktrace.Anomaly) { anoms = append(anoms, an) })
		if errors.Is(err, alert.ErrUnknownSource) {
			err = fmt.Errorf("cannot tell the record type (no pbid, codeid or id key); name it with --source %s", strings.Join(alert.Sources(), "|"))
		}
		if err == nil {
			line, err = f.Append(line[:0], a)
		}
		if err != nil {
			skipped++
			fmt.Fprintf(e.stderr, "dtforward format: %s (id %s) skipped: %v\n", rec.where, alert.RecordID(rec.raw), err)
			continue
		}
		for _, an := range anoms {
			if k := an.Source + "/" + an.Field; !warned[k] {
				warned[k] = true
				fmt.Fprintf(e.stderr, "dtforward format: %s (id %s): field %q has a value of an unexpected type; converted what could be read (reported once per field)\n",
					rec.where, a.ID, an.Field)
			}
		}
		line = append(line, '\n')
		if _, err := out.Write(line); err != nil {
			fmt.Fprintf(e.stderr, "dtforward format: %v\n", err)
			return exitFailure
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(e.stderr, "dtforward format: %v\n", err)
		return exitFailure
	}
	if skipped > 0 || bad > 0 {
		fmt.Fprintf(e.stderr, "dtforward format: %d of %d records skipped", skipped, records)
		if bad > 0 {
			fmt.Fprintf(e.stderr, ", %d unreadable parts of the input skipped", bad)
		}
		fmt.Fprintln(e.stderr)
		return exitFailure
	}
	return exitOK
}

// defaultMaxBytes is the line limit run uses for bare lines: SIEM_MAX_MESSAGE_BYTES (8192 when
// unset), held to run's rule and raised to the formatters' minimum as run does.
func defaultMaxBytes(getenv func(string) string) (int, error) {
	v := strings.TrimSpace(getenv("SIEM_MAX_MESSAGE_BYTES"))
	if v == "" {
		return 8192, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("SIEM_MAX_MESSAGE_BYTES: %q is not a number of bytes", v)
	}
	if err := config.CheckMaxMessageBytes(n); err != nil {
		return 0, fmt.Errorf("SIEM_MAX_MESSAGE_BYTES: %v (run refuses it too; --max-bytes 0 formats without a limit)", err)
	}
	return max(n, formatter.MinMaxBytes), nil
}

// inputRecord is one record of the input and where it is, for messages, or (bad set) a part of
// the input that could not be read as a record.
type inputRecord struct {
	raw   []byte
	where string // "line 3" or "record 2"
	bad   string
}

// splitInput splits the input into records. A JSON array is split as a whole (a syntax error
// in it is one unreadable part, reported with its line and column). Otherwise the input is a
// sequence of objects, usually one per line: an unreadable object is reported with the line it
// starts on and skipped, and reading resumes at the next line that starts an object.
func splitInput(data []byte) (recs []inputRecord) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] == '[' {
		raws, err := alert.SplitRecords(data)
		if err != nil {
			return []inputRecord{{bad: err.Error()}}
		}
		for i, r := range raws {
			recs = append(recs, inputRecord{raw: r, where: fmt.Sprintf("record %d", i+1)})
		}
		return recs
	}
	pos := len(data) - len(trimmed)
	for pos < len(data) {
		for pos < len(data) && strings.IndexByte(" \t\r\n", data[pos]) >= 0 {
			pos++
		}
		if pos >= len(data) {
			break
		}
		lineNo := 1 + bytes.Count(data[:pos], []byte("\n"))
		dec := json.NewDecoder(bytes.NewReader(data[pos:]))
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == nil && (len(raw) == 0 || raw[0] != '{') {
			err = fmt.Errorf("expected a JSON object, found %.20s", raw)
		}
		if err == nil {
			recs = append(recs, inputRecord{raw: raw, where: fmt.Sprintf("line %d", lineNo)})
			pos += int(dec.InputOffset())
			continue
		}
		recs = append(recs, inputRecord{bad: fmt.Sprintf("line %d: not a JSON record, skipped: %s", lineNo, jsonSyntaxMessage(err))})
		// Resume at the next line that starts an object; the lines between belong to the
		// unreadable record.
		for {
			nl := bytes.IndexByte(data[pos:], '\n')
			if nl < 0 {
				pos = len(data)
				break
			}
			pos += nl + 1
			if rest := bytes.TrimLeft(data[pos:], " \t\r"); len(rest) > 0 && rest[0] == '{' {
				break
			}
		}
	}
	return recs
}

// jsonSyntaxMessage says what is wrong without encoding/json's internals.
func jsonSyntaxMessage(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	case errors.As(err, &se):
		return strings.TrimPrefix(se.Error(), "json: ")
	}
	return err.Error()
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// hostOf returns the host[:port] of an appliance URL, "" when there is none.
func hostOf(u string) string {
	u = strings.TrimSpace(u)
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	return u
}
