package testenv

import (
	"fmt"
	"strconv"
	"strings"
)

// LogPrefix begins every log line the programs write to stderr.
const LogPrefix = "block-forged-sender: "

// LogFields splits a log line, "block-forged-sender: k=v k=\"v w\" ...", into its fields,
// each value as written: a quoted one keeps its quotes (see [LogValues]). The prefix may be
// there or not. On a pair without '=' or a quoted value that does not end, it returns the
// fields before it and an error.
func LogFields(line string) (map[string]string, error) {
	rest := strings.TrimPrefix(line, LogPrefix)
	f := map[string]string{}
	for rest != "" {
		k, v, ok := strings.Cut(rest, "=")
		if !ok || k == "" {
			return f, fmt.Errorf("log line %q: no key=value at %q", line, rest)
		}
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				return f, fmt.Errorf("log line %q: %s: %v", line, k, err)
			}
			f[k], rest = q, strings.TrimPrefix(v[len(q):], " ")
			continue
		}
		f[k], rest, _ = strings.Cut(v, " ")
	}
	return f, nil
}

// LogValues is [LogFields] with the quoted values unquoted.
func LogValues(line string) (map[string]string, error) {
	f, err := LogFields(line)
	for k, v := range f {
		if strings.HasPrefix(v, `"`) {
			f[k], _ = strconv.Unquote(v)
		}
	}
	return f, err
}

// HasLogFields reports whether the log line holds every field of want (written as a log
// line too), in any order and with the same values; a field written "k=" need only be there.
func HasLogFields(line, want string) bool {
	got, _ := LogFields(line)
	w, _ := LogFields(want)
	for k, v := range w {
		if g, ok := got[k]; !ok || v != "" && g != v {
			return false
		}
	}
	return true
}
