package main

import (
	"fmt"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/rules"
)

const compileHelp = `usage: block-forged-sender compile SRC [DST]

Compiles the rules text SRC into the constant database DST (default SRC.cdb), atomically:
it writes a temporary file beside DST, syncs it and renames it over DST, so a filter never
sees half a list. A syntax error names the file and line and leaves the old DST in place.
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
	n, err := rules.Compile(src, dst)
	if err != nil {
		fmt.Fprintf(std.err, "block-forged-sender compile: %v\n", err)
		return 111
	}
	fmt.Fprintf(std.out, "block-forged-sender: compiled %s from %s into %s\n", cli.Plural(n, "entry", "entries"), src, dst)
	return 0
}
