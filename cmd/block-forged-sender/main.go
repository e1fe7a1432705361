// Command block-forged-sender refuses mail whose envelope sender or header sender is
// forged or banned. qmail runs it once per message (filter and queue modes); Postfix and
// Sendmail talk to it as a milter. See the README for installation and the rules format.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
  check     explain the verdict for a sender and/or a message: block-forged-sender check
            [--sender ADDR] [--rcpt ADDR] [MESSAGE-FILE|-]; exit 0 pass, 1 reject
  compile   compile a rules text to CDB: block-forged-sender compile SRC [DST]
  milter    milter daemon for Postfix and Sendmail: block-forged-sender milter
            --listen unix:PATH|inet:PORT@HOST
  version   print the version
  help      print this help, or a command's help: block-forged-sender help COMMAND

Every flag can also be set in the environment as BFS_ and the flag's name in upper case
without hyphens (--rules: BFS_RULES, --max-field: BFS_MAXFIELD), so tcprules can set it
per client in tcp.smtp. A flag on the command line wins over the environment.
Run "block-forged-sender COMMAND --help" for a command's flags.
`

// queueName is the name under which the program runs in queue mode with no arguments, as
// qmail execs QMAILQUEUE.
const queueName = "block-forged-sender-queue"

func main() {
	limitMemory() // first: the administrator's softlimit bounds the heap (memory.go)
	os.Exit(run(os.Args, os.LookupEnv, stdio{os.Stdin, os.Stdout, os.Stderr, os.Stderr}))
}

// stdio holds the program's standard descriptors, so tests can run it in-process.
type stdio struct {
	in       *os.File
	out, err io.Writer
	errFile  *os.File // fd 2 for child processes; nil: none
}

// env looks up an environment variable; ok reports whether it is set (even empty).
type env func(name string) (value string, ok bool)

func (e env) get(name string) string { v, _ := e(name); return v }

func run(args []string, e env, std stdio) int {
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
	case "milter":
		return runMilter(rest, e, std)
	case "version", "--version":
		fmt.Fprintf(std.out, "block-forged-sender %s\n", version)
		return 0
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			return run([]string{args[0], rest[0], "--help"}, e, std)
		}
		fmt.Fprint(std.out, usage)
		return 0
	default:
		fmt.Fprintf(std.err, "block-forged-sender: unknown command %q\n%s", cmd, usage)
		return 2
	}
}

// hasHelp reports whether args asks for help, so the help text goes to stdout with exit 0.
func hasHelp(args []string) bool {
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
