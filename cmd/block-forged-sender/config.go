package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"block-forged-sender/internal/header"
	"block-forged-sender/internal/rules"
)

// Defaults that follow qmail's layout.
const (
	defaultRules      = "/var/qmail/control/badsenders"
	defaultQmailQueue = "/var/qmail/bin/qmail-queue"
	defaultMaxField   = 1 << 20
	defaultTimeout    = 30 * time.Minute
)

// Modes.
const (
	modeReject  = "reject"
	modeMonitor = "monitor"
)

// config is every setting of one run, resolved once from flags and the environment.
type config struct {
	rules             string
	mode              string
	senderFields      bool
	maxField          int
	allow             []string // canonical patterns
	defaultHost       string
	ignoreRelayClient bool
	trusted           bool
	syslog            bool
	timeout           time.Duration
	customError       bool
	qmailQueue        string
	envelopeFD        *os.File // fd 3 when qmail-qfilter opened it
	errorPipe         *os.File // fd 6 when it is the custom-error pipe

	// check only
	sender   string
	rcpts    []string
	clientIP string
}

// flagSet registers the flags of one command. Each flag also reads BFS_NAME from the
// environment when it is not given on the command line.
type flagSet struct {
	*flag.FlagSet
	cfg *config
}

func newFlagSet(name, help string, out io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			return // compile: no flags
		}
		fmt.Fprintln(fs.Output(), "\nflags (and their environment variables):")
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(fs.Output(), "  --%s, %s\n        %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	return &flagSet{FlagSet: fs, cfg: &config{}}
}

// envName is the environment variable of a flag: BFS_ and its name in upper case without
// hyphens (--qmail-queue: BFS_QMAILQUEUE).
func envName(flag string) string {
	return "BFS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", ""))
}

// policyFlags registers the settings shared by filter, queue and check.
func (fs *flagSet) policyFlags() {
	c := fs.cfg
	fs.StringVar(&c.rules, "rules", defaultRules, "the rules text `FILE`; its compiled form is FILE.cdb")
	fs.StringVar(&c.mode, "mode", modeReject, "reject, or monitor: log what would be rejected and pass it")
	fs.BoolVar(&c.senderFields, "sender-fields", true, "check Sender: and Resent-From: as well as From: (0 or false: From: only)")
	fs.IntVar(&c.maxField, "max-field", defaultMaxField, "largest sender header field held, in `bytes`; a longer one is a temporary failure")
	fs.Func("allow", "`PATTERNS` this client may use as sender (user@host, @host, .host; comma or space separated)", func(s string) error {
		p, err := rules.ParsePatterns(s)
		if err != nil {
			return err
		}
		c.allow = append(c.allow, p...)
		return nil
	})
	fs.StringVar(&c.defaultHost, "default-host", "", "`HOST` that qualifies an unqualified address (default: qmail's control/envnoathost, then control/me)")
}

// clientTrustFlags registers the per-client trust settings of filter, queue and check: qmail
// runs one process per SMTP session, so its environment describes one client. The milter
// daemon serves every client and has no such settings (it trusts {auth_authen} and
// --trusted-networks).
func (fs *flagSet) clientTrustFlags() {
	c := fs.cfg
	fs.BoolVar(&c.ignoreRelayClient, "ignore-relayclient", false, "do not trust RELAYCLIENT (for front ends such as spamdyke that set it for every client)")
	fs.BoolVar(&c.trusted, "trusted", false, "trust this client: pass its mail unchecked (set BFS_TRUSTED in tcp.smtp for chosen clients)")
}

// qmailFlags registers the settings of the two qmail modes.
func (fs *flagSet) qmailFlags() {
	c := fs.cfg
	fs.BoolVar(&c.syslog, "syslog", false, "log to syslog (facility mail, tag bfs) instead of stderr")
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, "give up with a temporary failure after this `duration` (qmail itself never times out)")
	fs.BoolVar(&c.customError, "custom-error", true, "when fd 6 is the custom-error pipe, give the client the rule's reason (exit 82)")
}

// parse parses args, then fills every flag not on the command line from the environment.
func (fs *flagSet) parse(args []string, e env) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		v, ok := e(envName(f.Name))
		if !ok {
			return
		}
		if bf, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool && bf.IsBoolFlag() {
			v = envBool(v)
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, e)
		}
	})
	if err != nil {
		return err
	}
	c := fs.cfg
	if fs.Lookup("mode") == nil {
		return nil // compile: no policy settings
	}
	if c.mode != modeReject && c.mode != modeMonitor {
		return fmt.Errorf("--mode %q: want reject or monitor", c.mode)
	}
	if c.maxField <= 0 {
		return fmt.Errorf("--max-field %d: must be positive", c.maxField)
	}
	if c.clientIP != "" {
		if _, err := netip.ParseAddr(c.clientIP); err != nil {
			return fmt.Errorf("--client %q: %v", c.clientIP, err)
		}
	}
	return nil
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

// headerOptions is the header scanner's part of the configuration. MaxField is --max-field
// as far as the memory budget allows (see fieldLimit).
func (c *config) headerOptions() header.Options {
	return header.Options{MaxField: fieldLimit(c.maxField), AllSenderFields: c.senderFields}
}
