package cli

import (
	"fmt"
	"strings"

	"block-forged-sender/internal/rules"
)

// DescribeLoad says where the rules came from, for check and the milter's log.
func DescribeLoad(info rules.LoadInfo) string {
	switch {
	case info.LastGood:
		return info.Source + " (last good: the text does not compile)"
	case info.InMemory:
		return info.Source + " (text, read directly)"
	case info.Compiled:
		return info.Source + " (compiled now: " + Plural(info.Entries, "entry", "entries") + ")"
	}
	return info.Source
}

// LoadWarning is what the log says when the rules were read from the text because the CDB
// could not be written: the admin must compile it. "" when there is nothing to say.
func LoadWarning(info rules.LoadInfo) string {
	if info.LastGood {
		return fmt.Sprintf("the rules text does not compile (%v): using %s, compiled from an earlier version; run: %s", info.Err, info.Source, info.Command)
	}
	if !info.InMemory {
		return ""
	}
	what := "has no compiled " + info.Source + ".cdb"
	if info.Stale {
		what = "is newer than " + info.Source + ".cdb"
	}
	why := ""
	if info.Err != nil {
		why = strings.TrimSpace(info.Err.Error())
	}
	return fmt.Sprintf("%s %s (read the text instead: %s); run: %s", info.Source, what, why, info.Command)
}

// Plural is "1 entry", "2 entries".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// projectVariables are BFS_ variables the project's tests and CI set, which no command
// reads: not worth a warning (nor is BFS_TEST_*).
var projectVariables = []string{"BFS_REQUIRE_TOOLS", "BFS_SENDMAIL_ROOT", "BFS_E2E_POSTFIX", "BFS_SOAK", "BFS_SOAK_CONCURRENCY", "BFS_VENDOR", "BFS_CORPUS", "BFS_QMAIL_SOFTLIMIT"}

// UnknownWarning names the BFS_ variables in environ that no flag of fs reads: a typo
// (BFS_IGNORE_RELAYCLIENT for BFS_IGNORERELAYCLIENT) would otherwise change nothing,
// silently. "" when there are none.
func UnknownWarning(fs *FlagSet, environ []string) string {
	known := map[string]bool{}
	fs.Variables(known)
	for _, v := range projectVariables {
		known[v] = true
	}
	var unknown []string
	for _, v := range UnknownVariables(environ, known) {
		if !strings.HasPrefix(v, "BFS_TEST_") {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	return fmt.Sprintf("unknown setting %s ignored (not a variable of %s; see its --help)", strings.Join(unknown, ", "), fs.Name())
}
