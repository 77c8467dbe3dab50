package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
)

// runFormat converts API JSON (a file or stdin) into one output line per record. Records that
// cannot be converted are reported on stderr with their id and skipped; the rest are printed.
// Exit 0 when every record was printed, 1 when the input is not JSON or a record was skipped,
// 2 for usage errors.
func runFormat(_ context.Context, e *env) int {
	fs := newFlags(e, "format", func(w io.Writer) {
		fmt.Fprint(w, "Usage: dtforward format [flags] [FILE|-]\n\nReads a Darktrace API response (a JSON array, one object, or one object per line)\nfrom FILE or stdin and prints one line per record.\n")
	})
	format := fs.String("format", "cef", "output format: "+strings.Join(formatter.Names(), ", "))
	source := fs.String("source", "", "record type: "+strings.Join(alert.Sources(), ", ")+" (default: recognised per record)")
	appliance := fs.String("appliance", "", "appliance label written into the output (default: $DARKTRACE_NAME)")
	host := fs.String("host", "", "appliance host for URLs the records lack (default: host of $DARKTRACE_URL)")
	maxBytes := fs.Int("max-bytes", 0, "trim lines longer than this many bytes (0: no limit)")
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
	recs, err := alert.SplitRecords(data)
	if err != nil {
		fmt.Fprintf(e.stderr, "dtforward format: %s: %v\n", name, err)
		return exitFailure
	}
	out := bufio.NewWriter(e.stdout)
	var line []byte
	skipped := 0
	for i, raw := range recs {
		a, err := alert.Decode(*source, raw, *appliance, *host)
		if err == nil {
			line, err = f.Append(line[:0], a)
		}
		if err != nil {
			skipped++
			fmt.Fprintf(e.stderr, "dtforward format: record %d (id %s) skipped: %v\n", i+1, alert.RecordID(raw), err)
			continue
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
	if skipped > 0 {
		fmt.Fprintf(e.stderr, "dtforward format: %d of %d records skipped\n", skipped, len(recs))
		return exitFailure
	}
	return exitOK
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
