// Command block-forged-sender refuses mail whose envelope sender or header sender is
// forged or banned. qmail runs it once per message (filter and queue modes); its milter
// and sync commands run the sibling programs block-forged-sender-milter and
// block-forged-sender-sync. See the README for installation and the rules format.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/rules"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `usage: block-forged-sender COMMAND [flags] [args]

Refuses mail whose envelope sender, or any From:, Sender: or Resent-From: address a mail
client could show, is on the badsenders list.

commands:
  filter    qmail-qfilter filter: message on fd 0, passed message on fd 1, envelope on
            fd 3 or in QMAILUSER/QMAILHOST/QMAILRCPTS; exit 0 pass, 31 or 82 reject
  queue     run as QMAILQUEUE in front of the real qmail-queue (also when invoked as
            block-forged-sender-queue): streams the message on, withholds the envelope
            of a rejected message
  check     explain a verdict, or replay stored mail (message files, Maildirs, mbox
            files): block-forged-sender check [--sender ADDR] [--rcpt ADDR] [--client
            IP|HOST] [FILE|MAILDIR|MBOX|-]...; exit 0 pass, 1 reject, 111 no verdict
  compile   compile a rules text to CDB: block-forged-sender compile SRC [DST]
  milter    milter daemon for Postfix and Sendmail: block-forged-sender milter
            --listen unix:PATH|inet:PORT@HOST (runs block-forged-sender-milter)
  sync      replace the rules with a PostgreSQL query's rows, atomically, once or on
            every NOTIFY: block-forged-sender sync --dsn DSN --query SQL [--watch]
            RULESFILE (runs block-forged-sender-sync)
  version   print the version
  help      print this help, or a command's help: block-forged-sender help COMMAND

Every flag can also be set in the environment as BFS_ and the flag's name in upper case
without hyphens (--rules: BFS_RULES, --max-field: BFS_MAXFIELD), so tcprules can set it
per client in tcp.smtp. A flag on the command line wins over the environment.
Run "block-forged-sender COMMAND --help" for a command's flags.
`

const versionHelp = `usage: block-forged-sender version [--rules FILE]

Prints the program's version and, with --rules, the version of the rules list FILE (a hash of
the compiled list: the same on every host that compiled the same list), read without
compiling anything. Exit 0, or 111 when the rules cannot be read.
`

// queueName is the name under which the program runs in queue mode with no arguments, as
// qmail execs QMAILQUEUE.
const queueName = "block-forged-sender-queue"

// siblings are the commands that run programs of their own, installed beside this one:
// they link what the per-message program must not (see docs/DESIGN.md).
var siblings = map[string]string{
	"milter": "block-forged-sender-milter",
	"sync":   "block-forged-sender-sync",
}

func main() {
	limitMemory() // first: the administrator's softlimit bounds the heap (memory.go)
	os.Exit(run(os.Args, os.LookupEnv, stdio{os.Stdin, os.Stdout, os.Stderr, os.Stderr, os.Environ()}))
}

// stdio holds the program's standard descriptors and environment, so tests can run it
// in-process.
type stdio struct {
	in       *os.File
	out, err io.Writer
	errFile  *os.File // fd 2 for child processes; nil: none
	environ  []string
}

func run(args []string, e cli.Env, std stdio) int {
	if filepath.Base(args[0]) == queueName {
		return runQueue(args[1:], e, std)
	}
	if len(args) < 2 {
		fmt.Fprint(std.err, usage)
		return 2
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "filter":
		return runFilter(rest, e, std)
	case "queue":
		return runQueue(rest, e, std)
	case "check":
		return runCheck(rest, e, std)
	case "compile":
		return runCompile(rest, e, std)
	case "milter", "sync":
		return runSibling(args[0], siblings[cmd], rest, std)
	case "version", "--version":
		return runVersion(rest, e, std)
	case "help", "-h", "-help", "--help":
		// "help COMMAND" is "COMMAND --help"; help for help, or any other word, is this.
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") && rest[0] != "help" {
			if _, known := commands[rest[0]]; known {
				return run([]string{args[0], rest[0], "--help"}, e, std)
			}
			fmt.Fprintf(std.err, "block-forged-sender: unknown command %q\n", rest[0])
			return 2
		}
		fmt.Fprint(std.out, usage)
		return 0
	default:
		fmt.Fprintf(std.err, "block-forged-sender: unknown command %q (see block-forged-sender help)\n", cmd)
		return 2
	}
}

// runVersion prints the program's version and, with --rules, the rules version.
func runVersion(args []string, e cli.Env, std stdio) int {
	fs := cli.NewFlagSet("block-forged-sender version", versionHelp)
	var file string
	fs.StringVar(&file, "rules", "", "the rules text `FILE` (its compiled form is FILE.cdb), or the .cdb itself")
	if cli.HasHelp(args) {
		fs.PrintHelp(std.out)
		return 0
	}
	// Only the command line: a BFS_RULES in the environment is not a request for it.
	if err := fs.Parse(args, func(string) (string, bool) { return "", false }); err != nil || fs.NArg() > 0 {
		if err != nil {
			fmt.Fprintln(std.err, err)
		}
		fmt.Fprint(std.err, "usage: block-forged-sender version [--rules FILE]\n")
		return 2
	}
	fmt.Fprintf(std.out, "block-forged-sender %s\n", version)
	if file == "" {
		return 0
	}
	s, info, err := rules.LoadReadOnly(file)
	if err != nil {
		fmt.Fprintf(std.err, "block-forged-sender version: %v\n", err)
		return 111
	}
	s.Close()
	v := info.Version
	if v == "" {
		v = "unknown (compiled by an older version of this program: compile it again)"
	}
	fmt.Fprintf(std.out, "rules %s version %s\n", cli.DescribeLoad(info), v)
	return 0
}

// commands are the words "help COMMAND" knows.
var commands = map[string]bool{"filter": true, "queue": true, "check": true, "compile": true, "milter": true, "sync": true, "version": true}

// runSibling replaces this process with the sibling program, found in this program's
// directory (symbolic links resolved), with the same arguments and environment.
func runSibling(self, name string, args []string, std stdio) int {
	path, err := siblingPath(self, name)
	if err == nil {
		err = syscall.Exec(path, append([]string{path}, args...), std.environ)
	}
	fmt.Fprintf(std.err, "block-forged-sender: cannot run %s: %v (make install puts it beside block-forged-sender)\n", name, err)
	return 111
}

func siblingPath(self, name string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = self
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	path := filepath.Join(filepath.Dir(exe), name)
	if _, err := os.Stat(path); err != nil {
		return path, err
	}
	return path, nil
}

// errConfig marks a bad flag or environment setting.
var errConfig = errors.New("configuration")
