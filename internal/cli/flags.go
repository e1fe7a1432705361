// Package cli is what the programs' main packages share: flags that also come from the
// environment, help texts, the settings of the policy, and the one log line schema. Only
// the commands import it.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Env looks up an environment variable; ok reports whether it is set (even empty).
type Env func(name string) (value string, ok bool)

// Get returns the variable's value, "" when it is not set.
func (e Env) Get(name string) string { v, _ := e(name); return v }

// FlagSet is the flags of one command. Each flag also reads BFS_NAME from the
// environment when it is not on the command line ([EnvName]).
type FlagSet struct {
	*flag.FlagSet
	cmd  string
	help string
}

// NewFlagSet returns the flags of the command cmd ("block-forged-sender filter"); help is
// the text that --help prints before the flags.
func NewFlagSet(cmd, help string) *FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller, in one line
	fs.Usage = func() {}
	return &FlagSet{FlagSet: fs, cmd: cmd, help: help}
}

// EnvName is the environment variable of a flag: BFS_ and its name in upper case without
// hyphens (--qmail-queue: BFS_QMAILQUEUE).
func EnvName(flag string) string {
	return "BFS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", ""))
}

// PrintHelp writes the command's help and its flags, each with its variable and default.
func (fs *FlagSet) PrintHelp(w io.Writer) {
	fmt.Fprint(w, fs.help)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags (and their environment variables):")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool || arg == "value" {
			arg = ""
		}
		if arg != "" {
			arg = " " + arg
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  --%s%s, %s\n        %s%s\n", f.Name, arg, EnvName(f.Name), usage, def)
	})
}

// UsageError is a bad command line or setting, in one line for the user.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Parse parses args, then fills every flag not on the command line from the environment.
// Its error is a *[UsageError] that names the flag or variable and says what is wrong, in
// words for an administrator (no Go parser internals).
func (fs *FlagSet) Parse(args []string, e Env) error {
	if err := fs.FlagSet.Parse(args); err != nil {
		return &UsageError{fs.cmd + ": " + fs.flagError(err)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		v, ok := e(EnvName(f.Name))
		if !ok {
			return
		}
		if bf, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool && bf.IsBoolFlag() {
			v = envBool(v)
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = &UsageError{fmt.Sprintf("%s: %s=%q: %s", fs.cmd, EnvName(f.Name), v, valueError(f, e))}
		}
	})
	return err
}

// flagError rewrites the flag package's error in an administrator's words.
func (fs *FlagSet) flagError(err error) string {
	s := err.Error()
	// "invalid value "x" for flag -max-field: parse error"
	if rest, ok := strings.CutPrefix(s, "invalid value "); ok {
		if q, after, ok := strings.Cut(rest, " for flag -"); ok {
			name, why, _ := strings.Cut(after, ": ")
			if f := fs.Lookup(name); f != nil {
				return fmt.Sprintf("--%s %s: %s", name, q, valueError(f, errors.New(why)))
			}
			return fmt.Sprintf("--%s %s: %s", name, q, plain(why))
		}
	}
	// "invalid boolean value "maybe" for -sender-fields: parse error"
	if rest, ok := strings.CutPrefix(s, "invalid boolean value "); ok {
		if q, after, ok := strings.Cut(rest, " for -"); ok {
			name, _, _ := strings.Cut(after, ": ")
			return fmt.Sprintf("--%s %s: not on or off (1, 0, yes, no, true, false)", name, q)
		}
	}
	if rest, ok := strings.CutPrefix(s, "flag provided but not defined: -"); ok {
		return fmt.Sprintf("unknown flag --%s (see --help)", strings.TrimLeft(rest, "-"))
	}
	if rest, ok := strings.CutPrefix(s, "flag needs an argument: -"); ok {
		return fmt.Sprintf("--%s needs a value", strings.TrimLeft(rest, "-"))
	}
	return s
}

// valueError is what is wrong with a flag's value, by the kind of value it takes.
func valueError(f *flag.Flag, err error) string {
	why := err.Error()
	if !strings.Contains(why, "parse error") && !strings.Contains(why, "invalid syntax") && !strings.HasPrefix(why, "time: ") {
		return plain(why) // a message of our own (--allow, --trusted-networks)
	}
	switch f.Value.(flag.Getter).Get().(type) {
	case int, int64, uint, uint64:
		return "not a whole number"
	case time.Duration:
		return "not a duration (e.g. 30s, 5m, 1h)"
	case bool:
		return "not on or off (1, 0, yes, no, true, false)"
	}
	return plain(why)
}

// plain replaces the strconv and time parsers' messages with words.
func plain(why string) string {
	switch {
	case strings.Contains(why, "parse error"), strings.Contains(why, "invalid syntax"):
		return "not a valid value"
	case strings.Contains(why, "value out of range"):
		return "out of range"
	case strings.HasPrefix(why, "time: "):
		return "not a duration (e.g. 30s, 5m, 1h)"
	}
	return why
}

// envBool reads an on/off variable the qmail way: set, even empty, means on (as with
// RELAYCLIENT=""), except for 0, no, false and off.
func envBool(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "no", "false", "off":
		return "false"
	case "", "yes", "on":
		return "true"
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return strconv.FormatBool(b)
	}
	return v
}

// HasHelp reports whether args asks for help (-h, -help, --help before any argument
// that is not a flag), so the help text goes to stdout with exit 0.
func HasHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
		if !strings.HasPrefix(a, "-") {
			return false
		}
	}
	return false
}

// UnknownVariables returns the BFS_ variables set in environ that no flag of the
// program reads (a typo such as BFS_IGNORE_RELAYCLIENT for BFS_IGNORERELAYCLIENT), sorted.
// known holds the variables that are read; the flag sets' own are added by the caller with
// [FlagSet.Variables].
func UnknownVariables(environ []string, known map[string]bool) []string {
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "BFS_") && !known[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	return unknown
}

// Variables adds the environment variables of the set's flags to known.
func (fs *FlagSet) Variables(known map[string]bool) {
	fs.VisitAll(func(f *flag.Flag) { known[EnvName(f.Name)] = true })
}
