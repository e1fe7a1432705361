package rules

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"block-forged-sender/internal/cdb"
)

// The :rcpthosts line. A qmail host lists the domains it accepts mail for in
// control/rcpthosts (one per line; '#' comments and blank lines skipped; trailing blanks
// ignored) and control/morercpthosts.cdb (written by qmail-newmrh: key = the domain in
// lower case, value empty). qmail-smtpd accepts a recipient whose domain is a line of
// either exactly, or ends in a line that starts with a dot (".example.com" is every
// subdomain of example.com, not example.com itself): notqmail's rcpthosts.c. A sender
// address in any of those domains, coming from outside, is forged, so the line
//
//	:rcpthosts [control=DIR] [REASON]
//
// stands for "@d" and ".d" for each domain d of those files, and ".d" alone for a line
// ".d", all with REASON. It is read when the list is compiled: the files' identities
// (inode, size, modification time) go into the CDB's meta record, and [Load] compiles
// again when one of them changes. DIR defaults to [DefaultControl]; a relative DIR is
// taken from the rules file's directory.

// DefaultControl is qmail's control directory, where :rcpthosts reads by default.
const DefaultControl = "/var/qmail/control"

// testOnlyOpenControl opens qmail's control files, and testOnlyDefaultControl is the
// directory read without control=; the tests replace them so that no test ever reads
// this machine's /var/qmail.
var (
	testOnlyOpenControl    = os.Open
	testOnlyDefaultControl = DefaultControl
)

// directive is a :rcpthosts line.
type directive struct {
	control string // the control= directory as written; "" for DefaultControl
}

// dep is a file a compiled list was made from, besides its text: its path and its
// identity when it was read ("-" when it did not exist).
type dep struct {
	path, stamp string
}

// stamp identifies the state of a file: a change to it (an edit, a new file renamed over
// it) changes its stamp.
func stamp(fi os.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d:%d:%d", ino, fi.Size(), fi.ModTime().UnixNano())
}

// stampPath returns the stamp of the file at path now: "-" when it does not exist, and
// for any other failure a value no stamp equals.
func stampPath(path string) string {
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		return stamp(fi)
	case errors.Is(err, fs.ErrNotExist):
		return "-"
	}
	return "? " + err.Error()
}

// parseDirective parses the rest of a line whose entry starts with ':' (or "!:").
func parseDirective(s, entry string, end int) (Rule, *directive, string) {
	if entry[0] == '!' {
		return Rule{}, nil, fmt.Sprintf("\"%s\": a directive cannot be an exception; write the exceptions as entries (!user@host, !@host, !.host)", entry)
	}
	if name := entry[1:]; !strings.EqualFold(name, "rcpthosts") {
		if nearest(name, []string{"rcpthosts"}, map[string]string{"morercpthosts": "rcpthosts", "rcpthosts.cdb": "rcpthosts"}) != "" {
			return Rule{}, nil, fmt.Sprintf("unknown directive \"%s\": did you mean :rcpthosts?", entry)
		}
		return Rule{}, nil, fmt.Sprintf("unknown directive \"%s\": the one directive is :rcpthosts", entry)
	}
	r, d := Rule{Entry: entry}, &directive{}
	seen := false
	for i := skipBlanks(s, end); i < len(s); i = skipBlanks(s, end) {
		name, ok := optionName(s[i:])
		if !ok {
			r.Reason = strings.TrimRight(s[i:], " \t")
			if msg := checkReason(r.Reason, false); msg != "" {
				return Rule{}, nil, msg
			}
			break
		}
		var msg string
		if end, msg = scanToken(s, i, "option"); msg != "" {
			return Rule{}, nil, msg
		}
		tok := s[i:end]
		switch {
		case !strings.EqualFold(name, "control"):
			if nearest(name, []string{"control"}, map[string]string{"dir": "control", "directory": "control", "qmail": "control"}) != "" {
				return Rule{}, nil, fmt.Sprintf("unknown option \"%s\": did you mean control=? (:rcpthosts takes control=DIR), and a reason may not start with NAME= (reword it)", tok)
			}
			return Rule{}, nil, fmt.Sprintf("unknown option \"%s\": :rcpthosts takes control=DIR, and a reason may not start with NAME= (reword it)", tok)
		case seen:
			return Rule{}, nil, fmt.Sprintf("\"%s\": control= given twice", tok)
		}
		d.control, seen = unquote(tok[len(name)+1:]), true
		if d.control == "" {
			return Rule{}, nil, fmt.Sprintf("\"%s\": empty control directory", tok)
		}
	}
	return r, d, ""
}

// unquote removes the quotes of a token's "quoted strings" and the backslashes that quote
// a byte in them.
func unquote(s string) string {
	if strings.IndexByte(s, '"') < 0 {
		return s
	}
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
			continue
		case quoted && c == '\\' && i+1 < len(s):
			i++
			c = s[i]
		}
		b.WriteByte(c)
	}
	return b.String()
}

// controlDir returns the absolute control directory of a :rcpthosts line of file.
func controlDir(file string, d *directive) (string, error) {
	dir := d.control
	if dir == "" {
		dir = testOnlyDefaultControl
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(file), dir)
	}
	return filepath.Abs(dir)
}

// Flags of a hosted domain: which of @d and .d it gives.
const (
	hostAt  = 1
	hostDot = 2
)

// expandHosts reads the control files of the :rcpthosts line l of file and calls emit
// for each rule it stands for, in the order of the domains. A file that cannot be read is
// a mistake of line l (added to errs, with no rule emitted); a line of the files that is
// no domain name is a warning (given to warn, which may be nil). It returns the files
// read, for the meta record, the number of domains, and emit's error.
func expandHosts(file string, l *parsed, errs *ErrorList, warn func(at int, w Warning), emit func(*Rule) error) ([]dep, int, error) {
	if warn == nil {
		warn = func(int, Warning) {}
	}
	fail := func(format string, args ...any) ([]dep, int, error) {
		errs.add(file, l.line, fmt.Sprintf(format, args...))
		return nil, 0, nil
	}
	dir, err := controlDir(file, l.hosts)
	if err != nil {
		return fail(":rcpthosts: %v", err)
	}
	domains := map[string]uint8{}
	add := func(where string, line int, raw string) {
		host, flags := raw, uint8(hostAt|hostDot)
		if strings.HasPrefix(raw, ".") {
			host, flags = raw[1:], hostDot
		}
		d, msg := canonHost(host)
		if msg == "" && d[0] == '[' && flags == hostDot {
			msg = "a domain literal has no subdomains"
		}
		if msg != "" || host == "" {
			if msg == "" {
				msg = "empty host"
			}
			warn(l.line, Warning{where, line, fmt.Sprintf("%q is not a domain name (%s): not protected by %s:%d", raw, msg, file, l.line)})
			return
		}
		if d[0] == '[' {
			flags = hostAt
		}
		domains[d] |= flags
	}

	rh := filepath.Join(dir, "rcpthosts")
	f, err := testOnlyOpenControl(rh)
	if err != nil {
		return fail(":rcpthosts: %v (qmail-smtpd without it accepts mail for every domain: name the directory with control=DIR)", err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return fail(":rcpthosts: %v", err)
	}
	lr := newLineReader(io.NewSectionReader(f, 0, before.Size()))
	for {
		b, long, ok, err := lr.next()
		if err != nil {
			return fail(":rcpthosts: read %s: %v", rh, err)
		}
		if !ok {
			break
		}
		if long {
			warn(l.line, Warning{rh, lr.line, fmt.Sprintf("line longer than %d bytes: not a domain name", MaxLine)})
			continue
		}
		// qmail strips trailing blanks; leading ones and a CR (a file edited elsewhere)
		// are stripped too, so that such a line still protects the domain it names.
		s := strings.Trim(string(b), " \t\r")
		if s == "" || s[0] == '#' {
			continue
		}
		add(rh, lr.line, s)
	}
	if now, err := f.Stat(); err != nil || stamp(now) != stamp(before) {
		return fail(":rcpthosts: %s changed while it was read: compile again", rh)
	}
	deps := []dep{{rh, stamp(before)}}

	mrh := filepath.Join(dir, "morercpthosts.cdb")
	mf, err := testOnlyOpenControl(mrh)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		deps = append(deps, dep{mrh, "-"})
	case err != nil:
		return fail(":rcpthosts: %v", err)
	default:
		defer mf.Close()
		fi, err := mf.Stat()
		if err != nil {
			return fail(":rcpthosts: %v", err)
		}
		r, err := cdb.NewReader(mf, fi.Size())
		if err == nil {
			err = r.ForEach(func(k, _ []byte) error {
				s := strings.Trim(string(k), " \t\r")
				if s == "" || s[0] == '#' {
					return nil
				}
				add(mrh, 0, s)
				return nil
			})
		}
		if err != nil {
			return fail(":rcpthosts: %s: %v", mrh, err)
		}
		if now, err := mf.Stat(); err != nil || stamp(now) != stamp(fi) {
			return fail(":rcpthosts: %s changed while it was read: compile again", mrh)
		}
		deps = append(deps, dep{mrh, stamp(fi)})
	}

	if len(domains) == 0 {
		warn(l.line, Warning{file, l.line, fmt.Sprintf(":rcpthosts: no domain in %s or %s: the line protects nothing", rh, mrh)})
	}
	names := make([]string, 0, len(domains))
	for d := range domains {
		names = append(names, d)
	}
	slices.Sort(names)
	r := Rule{File: file, Line: l.line, Reason: l.rule.Reason}
	for _, d := range names {
		for _, k := range [...]struct {
			flag   uint8
			prefix string
		}{{hostAt, "@"}, {hostDot, "."}} {
			if domains[d]&k.flag == 0 {
				continue
			}
			r.Key = k.prefix + d
			r.Entry = l.rule.Entry + " " + r.Key
			if err := emit(&r); err != nil {
				return deps, len(names), err
			}
		}
	}
	return deps, len(names), nil
}
