package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// saslUser and saslPassword are the one account of the test's SASL database.
const (
	saslUser     = "m.okafor"
	saslPassword = "correct horse battery staple"
)

// withSASL turns on SMTP AUTH in a private Postfix through Cyrus SASL (Debian's
// libsasl2-modules for PLAIN, a sasldb written by saslpasswd2 of sasl2-bin), the way a
// submission service commonly authenticates its users.
func withSASL(t *testing.T, opt options) options {
	t.Helper()
	dir, err := os.MkdirTemp("", "bfs-sasl-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	db := filepath.Join(dir, "sasldb2")
	cmd := exec.Command("saslpasswd2", "-f", db, "-c", "-p", "-u", domain, saslUser)
	cmd.Stdin = strings.NewReader(saslPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v\n%s", err, out)
	}
	// smtpd runs as postfix and opens the database itself.
	_, pfGID := ids(t, "postfix")
	must(t, os.Chown(db, 0, pfGID))
	must(t, os.Chmod(db, 0o640))
	opt.saslConf = "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: " + db + "\n"
	opt.extra += "smtpd_sasl_auth_enable = yes\n" +
		"smtpd_sasl_type = cyrus\n" +
		"smtpd_sasl_path = smtpd\n" +
		"smtpd_sasl_local_domain = " + domain + "\n"
	return opt
}

// TestAuthenticated: a client that logs in with SMTP AUTH passes unchecked, even with our
// own domain in the envelope and in From: (it is our user, sending as us); the same message
// from the same address without AUTH is refused. Postfix hands the login to the milter in
// {auth_authen} at MAIL FROM, and the daemon logs it.
func TestAuthenticated(t *testing.T) {
	requireTools(t, "saslpasswd2")
	d := startDaemon(t, testRules)
	// The daemon asks for {auth_authen} itself: Postfix sends it even with main.cf's list
	// of MAIL FROM macros empty.
	pf := startPostfix(t, withSASL(t, options{milter: d.spec, extra: "milter_mail_macros =\n"}))
	own := send{from: saslUser + "@" + domain, msg: bytes.Replace(forged, []byte("ceo@"), []byte(saslUser+"@"), 1)}
	reason := "forged sender: acme-corp.example used from outside"

	out, code := pf.swaks(t, own)
	if got := refusal(out); code != 23 || got != "550 5.7.1 "+reason {
		t.Fatalf("without AUTH: swaks exit %d, refusal %q, want 23 and 550 5.7.1; transcript:\n%s", code, got, out)
	}
	waitFor(t, pf, "NOQUEUE: milter-reject: MAIL from localhost[127.0.0.1]: 550 5.7.1 "+reason+"; from=<"+own.from+">")

	own.auth = true
	out, code = pf.swaks(t, own)
	id := queuedID(out)
	if code != 0 || id == "" {
		t.Fatalf("with AUTH: swaks exit %d, transcript:\n%s", code, out)
	}
	if got := string(body(pf.deliveredByID(t, id))); got != "Pay now.\n" {
		t.Errorf("delivered body %q", got)
	}
	// Postfix's own record of the login, and the daemon's: the login name qualified with
	// smtpd_sasl_local_domain, as Postfix passes it in {auth_authen}. Postfix has no queue
	// id yet at MAIL FROM, where a trusted session is let through.
	login := saslUser + "@" + domain
	waitFor(t, pf, id+": client=localhost[127.0.0.1], sasl_method=PLAIN, sasl_username="+login)
	want := `block-forged-sender: queue="" verdict=pass stage=mail trusted=auth sender=` + own.from +
		" client=127.0.0.1 host=localhost auth=" + login + " duration="
	if !logHas(d.logText(t), want) {
		t.Errorf("daemon log has no line starting %q:\n%s", want, d.logText(t))
	}

	// A failed login is no login: the client goes on without it and is judged like anyone.
	own.password, own.authOptional = "wrong", true
	out, code = pf.swaks(t, own)
	if got := refusal(out); code != 23 || got != "550 5.7.1 "+reason || !strings.Contains(out, "<** 535 5.7.8 Error: authentication failed") {
		t.Fatalf("wrong password: swaks exit %d, refusal %q, want 23 and 550 5.7.1 after 535; transcript:\n%s", code, got, out)
	}
	if n := logCount(d.logText(t), "verdict=reject stage=mail reason=\""+reason+"\" rule="+d.rules+":1 matched=envelope:"+own.from+" sender="+own.from+" client=127.0.0.1 host=localhost duration="); n != 2 {
		t.Errorf("daemon logged %d refusals at MAIL FROM without auth=, want 2:\n%s", n, d.logText(t))
	}
}
