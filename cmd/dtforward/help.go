package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/dtforward/dtforward/config"
)

// Every command follows the same conventions as well-kept Go CLIs: --help (and -h) prints the
// help to stdout and exits 0; a usage error prints the problem and a one-line pointer to
// --help on stderr and exits 2. commandFlags and parseFlags are the one place that does it.

// cmdFlags is a command's FlagSet with its help text.
type cmdFlags struct {
	*flag.FlagSet
	e    *env
	help func(w io.Writer) // the text above the flag list
}

// newFlags returns the flags of "dtforward <name>"; parse errors go to stderr.
func newFlags(e *env, name string, help func(w io.Writer)) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {} // parse prints the help or the hint itself
	return &cmdFlags{FlagSet: fs, e: e, help: help}
}

// parse parses the command's arguments. ok is false when the command must exit with code: 0
// after --help (help on stdout), 2 after a usage error (reported on stderr).
func (f *cmdFlags) parse() (code int, ok bool) {
	err := f.Parse(f.e.args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		printHelp(f.e.stdout, f.FlagSet, f.help)
		return exitOK, false
	default:
		// flag has already printed the error itself.
		fmt.Fprintf(f.e.stderr, "Run \"dtforward %s --help\" for usage.\n", f.Name())
		return exitUsage, false
	}
}

// parseNoArgs is parse for a command that takes flags only: an argument is a usage error,
// reported with hint after the argument (e.g. " (run takes no arguments; …)").
func (f *cmdFlags) parseNoArgs(hint string) (code int, ok bool) {
	if code, ok := f.parse(); !ok {
		return code, false
	}
	if f.NArg() > 0 {
		return usageError(f.e, f.Name(), "unexpected argument %q"+hint, f.Arg(0)), false
	}
	return 0, true
}

// printHelp writes the help text, then the flags (if any) with their defaults.
func printHelp(w io.Writer, fs *flag.FlagSet, help func(io.Writer)) {
	if help != nil {
		help(w)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// usageError reports a usage problem found after parsing, with the pointer to --help.
func usageError(e *env, cmd, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "dtforward %s: "+format+"\n", append([]any{cmd}, args...)...)
	fmt.Fprintf(e.stderr, "Run \"dtforward %s --help\" for usage.\n", cmd)
	return exitUsage
}

// envHelp lists the environment variables from config.Table, one entry each: name (with
// [_FILE] when a file variant exists), its default, and its whole description, wrapped under
// the description column rather than cut. It is generated so that "run --help" cannot drift
// from the configuration.
func envHelp(w io.Writer) {
	fmt.Fprint(w, "\nEnvironment (also in README.md, \"Configuration reference\"):\n")
	vars := config.Table()
	hasFile := map[string]bool{}
	for _, v := range vars {
		if base, ok := strings.CutSuffix(v.Name, "_FILE"); ok {
			hasFile[base] = true
		}
	}
	for _, v := range vars {
		if base, ok := strings.CutSuffix(v.Name, "_FILE"); ok && hasFile[base] && isVar(vars, base) {
			continue // folded into its secret's line
		}
		name := v.Name
		if hasFile[name] {
			name += "[_FILE]"
		}
		if v.Default != "" {
			name += "=" + v.Default
		}
		for i, line := range wrap(v.Description, helpLineWidth) {
			if i == 0 {
				fmt.Fprintf(w, "  %-37s %s\n", name, line)
			} else {
				fmt.Fprintf(w, "  %-37s %s\n", "", line)
			}
		}
	}
}

func isVar(vars []config.Var, name string) bool {
	for _, v := range vars {
		if v.Name == name {
			return true
		}
	}
	return false
}

// helpLineWidth bounds a line of a variable's description in "run --help" (after the
// 40-column name), so that the help reads in a 104-column terminal.
const helpLineWidth = 64

// wrap breaks s into lines of at most width characters at spaces; a word longer than width
// (a path, a URL) gets a line of its own rather than being cut.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
