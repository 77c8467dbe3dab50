package formatter

import (
	"fmt"
	"sort"
	"strings"
)

// Options configure a formatter.
type Options struct {
	// Version is the dtforward version written into the CEF/LEEF header (Device Version).
	Version string
	// LEEFVersion is "2.0" (default; TAB delimiter declared as x09) or "1.0".
	LEEFVersion string
	// MaxBytes is the longest line Append produces; longer lines are trimmed field-wise in the
	// documented order. 0 means no limit.
	MaxBytes int
}

// MinMaxBytes is the smallest accepted Options.MaxBytes: every format's fixed fields fit.
const MinMaxBytes = 512

// constructors is the one table of formats.
var constructors = map[string]func(Options) (Formatter, error){
	"cef":            newCEF,
	"leef":           newLEEF,
	"json":           newJSON,
	"darktrace-json": newDarktraceJSON,
	"ocsf":           newOCSF,
}

// New returns the formatter called name (see Names).
func New(name string, o Options) (Formatter, error) {
	c, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("unknown format %q (valid: %s)", name, strings.Join(Names(), ", "))
	}
	if o.MaxBytes < 0 || (o.MaxBytes > 0 && o.MaxBytes < MinMaxBytes) {
		return nil, errBadOption("MaxBytes", fmt.Sprint(o.MaxBytes), fmt.Sprintf("0 (no limit) or at least %d", MinMaxBytes))
	}
	return c(o)
}

// Names lists the format names New accepts, sorted.
func Names() []string {
	out := make([]string, 0, len(constructors))
	for n := range constructors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func errBadOption(name, got, valid string) error {
	return fmt.Errorf("formatter option %s: %q is not valid (valid: %s)", name, got, valid)
}
