package main

import (
	"errors"
	"fmt"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/rules"
)

const compileHelp = `usage: block-forged-sender compile SRC [DST]

Compiles the rules text SRC into the constant database DST (default SRC.cdb), atomically:
it writes a temporary file beside DST, syncs it and renames it over DST, so a filter never
sees half a list. Every mistake is named by file and line, all at once, and leaves the old
DST in place (the filters keep using it, and say so in their log lines). Warnings (an entry
repeated, an exception that cancels a block entry or that nothing needs, a reason the SMTP
reply cannot carry) do not stop the compile. The output ends with the rules version, the
same on every host that compiles the same list.
Run it after editing the list, as qmail-newmrh is run after editing morercpthosts (the
filter recompiles by itself only where it may write the directory).

Exit 0: compiled. Exit 2: usage. Exit 111: the list could not be read, parsed or written.
`

// runCompile compiles a rules text to CDB.
func runCompile(args []string, e cli.Env, std stdio) int {
	fs := cli.NewFlagSet("block-forged-sender compile", compileHelp)
	if cli.HasHelp(args) {
		fs.PrintHelp(std.out)
		return 0
	}
	if err := fs.Parse(args, e); err != nil || fs.NArg() < 1 || fs.NArg() > 2 {
		if err != nil {
			fmt.Fprintf(std.err, "%v\n", err)
		}
		fmt.Fprint(std.err, "usage: block-forged-sender compile SRC [DST]\n")
		return 2
	}
	src := fs.Arg(0)
	dst := src + ".cdb"
	if fs.NArg() == 2 {
		dst = fs.Arg(1)
	}
	rep, err := rules.Compile(src, dst)
	if list := (*rules.ErrorList)(nil); errors.As(err, &list) {
		for _, e := range list.Errors {
			fmt.Fprintf(std.err, "block-forged-sender compile: %v\n", e)
		}
		n := len(list.Errors) + list.More
		if list.More > 0 {
			fmt.Fprintf(std.err, "block-forged-sender compile: ... and %d more\n", list.More)
		}
		fmt.Fprintf(std.err, "block-forged-sender compile: %s in %s: %s left as it was\n", cli.Plural(n, "error", "errors"), src, dst)
		return 111
	}
	if err != nil {
		fmt.Fprintf(std.err, "block-forged-sender compile: %v\n", err)
		return 111
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(std.err, "block-forged-sender compile: warning: %s\n", w)
	}
	if rep.MoreWarnings > 0 {
		fmt.Fprintf(std.err, "block-forged-sender compile: warning: ... and %d more\n", rep.MoreWarnings)
	}
	fmt.Fprintf(std.out, "block-forged-sender: compiled %s into %s: %s\n", src, dst, rep.Summary())
	return 0
}
