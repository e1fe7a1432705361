package main

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"time"
	"unicode"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
)

// Defaults that follow qmail's layout.
const (
	defaultQmailQueue = "/var/qmail/bin/qmail-queue"
	defaultTimeout    = 30 * time.Minute
)

// config is every setting of one run, resolved once from flags and the environment.
type config struct {
	cli.Policy
	ignoreRelayClient bool
	trusted           bool
	timeout           time.Duration
	customError       bool
	qmailQueue        string
	control           string   // qmail's control directory (for envnoathost and me)
	envelopeFD        *os.File // fd 3 when qmail-qfilter opened it
	errorPipe         *os.File // fd 6 when it is the custom-error pipe

	// check only
	sender     string
	rcpts      []string
	clientSet  bool   // --client was given: TCPREMOTEIP and TCPREMOTEHOST are not read
	clientIP   string // from --client
	clientHost string // from --client
}

// policyFlags registers the settings shared by filter, queue and check.
func policyFlags(fs *cli.FlagSet, c *config) {
	c.Policy.Register(fs, cli.DefaultRules)
	fs.StringVar(&c.DefaultHost, "default-host", "", "`HOST` that qualifies an unqualified address (default: qmail's control/envnoathost, then control/me)")
	fs.StringVar(&c.control, "qmail-control", qmail.DefaultControl, "qmail's control `DIR`, where envnoathost and me are read")
}

// clientTrustFlags registers the per-client trust settings of filter, queue and check: qmail
// runs one process per SMTP session, so its environment describes one client. The milter
// daemon serves every client and has no such settings (it trusts SMTP AUTH and
// --trusted-networks).
func clientTrustFlags(fs *cli.FlagSet, c *config) {
	fs.BoolVar(&c.ignoreRelayClient, "ignore-relayclient", false, "do not trust RELAYCLIENT (for front ends such as spamdyke that set it for every client)")
	fs.BoolVar(&c.trusted, "trusted", false, "trust this client: pass its mail unchecked (set BFS_TRUSTED in tcp.smtp for chosen clients)")
}

// qmailFlags registers the settings of the two qmail modes.
func qmailFlags(fs *cli.FlagSet, c *config) {
	c.Policy.RegisterSyslog(fs)
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, "give up with a temporary failure after this `DURATION` (qmail itself never times out)")
	fs.BoolVar(&c.customError, "custom-error", true, "when fd 6 is the custom-error pipe, give the client the rule's reason (exit 82)")
}

// parse parses the command line and the environment into c, and checks the result.
func parse(fs *cli.FlagSet, c *config, args []string, e cli.Env) error {
	if err := fs.Parse(args, e); err != nil {
		return err
	}
	if fs.Lookup("mode") == nil {
		return nil // compile: no policy settings
	}
	if err := c.Policy.Check(fs.Name()); err != nil {
		return err
	}
	return nil
}

// addClient takes one --client: an IP address or a host name (at most one of each).
func (c *config) addClient(s string) error {
	s = strings.TrimSpace(s)
	if ip, err := netip.ParseAddr(s); err == nil {
		if c.clientIP != "" {
			return errors.New("a second IP address (give one IP address and one host name at most)")
		}
		c.clientIP, c.clientSet = ip.String(), true
		return nil
	}
	if !isHostName(s) {
		return errors.New("not an IP address or a host name")
	}
	if c.clientHost != "" {
		return errors.New("a second host name (give one IP address and one host name at most)")
	}
	c.clientHost, c.clientSet = s, true
	return nil
}

// isHostName reports whether s can be a host name: dot-separated labels of letters
// (UTF-8 too), digits, hyphens and underscores, not digits and dots alone (a mistyped IP
// address), a final dot allowed.
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	digits := true
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			switch {
			case '0' <= r && r <= '9':
			case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', r == '-', r == '_', r >= 0x80 && unicode.IsLetter(r):
				digits = false
			default:
				return false
			}
		}
	}
	return !digits
}

// policyConfig is the policy's configuration for this run.
func (c *config) policyConfig(explain bool) *policy.Config {
	pc := c.Policy.Config(c.defaultHost)
	pc.IgnoreRelayClient = c.ignoreRelayClient
	pc.Explain = explain
	return pc
}

// defaultHost is the host qmail would add to an unqualified address: --default-host, else
// control/envnoathost, else control/me. It is read only when such an address is seen.
func (c *config) defaultHost() (string, error) {
	if c.DefaultHost != "" {
		return c.DefaultHost, nil
	}
	return qmail.Control{Dir: c.control}.DefaultHost()
}

// client describes the SMTP client from the environment tcpserver and tcprules set:
// RELAYCLIENT set (even empty) by tcprules for relay clients and by the common SMTP AUTH
// patches after a successful AUTH; TCPREMOTEINFO (IDENT) is never trusted: the client
// controls it. check's --client, when given, replaces TCPREMOTEIP and TCPREMOTEHOST.
func (c *config) client(e cli.Env) policy.Client {
	cl := policy.Client{Host: e.Get("TCPREMOTEHOST"), Trusted: c.trusted}
	_, cl.RelayClient = e("RELAYCLIENT")
	ip := e.Get("TCPREMOTEIP")
	if c.clientSet {
		ip, cl.Host = c.clientIP, c.clientHost
	}
	if a, err := netip.ParseAddr(ip); err == nil {
		cl.IP = a.Unmap()
	}
	return cl
}
