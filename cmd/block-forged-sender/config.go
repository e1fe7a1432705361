package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

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
	sender   string
	rcpts    []string
	clientIP string
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
	if c.clientIP != "" {
		if _, err := netip.ParseAddr(c.clientIP); err != nil {
			return &cli.UsageError{Msg: fmt.Sprintf("%s: --client %q: not an IP address", fs.Name(), c.clientIP)}
		}
	}
	return nil
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
// controls it.
func (c *config) client(e cli.Env) policy.Client {
	cl := policy.Client{Host: e.Get("TCPREMOTEHOST"), Trusted: c.trusted}
	_, cl.RelayClient = e("RELAYCLIENT")
	ip := e.Get("TCPREMOTEIP")
	if c.clientIP != "" {
		ip = c.clientIP
	}
	if a, err := netip.ParseAddr(ip); err == nil {
		cl.IP = a.Unmap()
	}
	return cl
}
