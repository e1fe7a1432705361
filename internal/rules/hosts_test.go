package rules

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"block-forged-sender/internal/cdb"
	"block-forged-sender/internal/testenv"
)

// writeMorercpthosts writes dir/morercpthosts.cdb with the keys given (empty values), as
// qmail-newmrh does: with our Writer, or with Debian's cdbmake (freecdb).
func writeMorercpthosts(t *testing.T, dir string, keys []string, withCdbmake bool) {
	t.Helper()
	path := filepath.Join(dir, "morercpthosts.cdb")
	if withCdbmake {
		testenv.RequireTools(t, "cdbmake")
		var in bytes.Buffer
		for _, k := range keys {
			fmt.Fprintf(&in, "+%d,0:%s->\n", len(k), k)
		}
		in.WriteByte('\n')
		cmd := exec.Command("cdbmake", path, path+".tmp")
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cdbmake: %v: %s", err, out)
		}
		return
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	w, err := cdb.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := w.Add([]byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// rcpthostsText is a control/rcpthosts with what qmail allows in one: comments, blank
// lines, trailing blanks, a subdomain wildcard, a domain literal, upper case.
const rcpthostsText = `# our domains
ours.example
.sub.ours.net

Mixed.Example  ` + "\t" + `
[192.0.2.1]
not a domain
`

func TestRcpthosts(t *testing.T) {
	for _, tool := range []string{"internal/cdb", "cdbmake"} {
		t.Run(tool, func(t *testing.T) {
			dir := t.TempDir()
			ctl := filepath.Join(dir, "control")
			if err := os.Mkdir(ctl, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(ctl, "rcpthosts"), rcpthostsText)
			writeMorercpthosts(t, ctl, []string{"hosted.example", "ours.example", ".virt.example", "bücher.example", "bad@key"}, tool == "cdbmake")
			src := filepath.Join(dir, "badsenders")
			writeFile(t, src, "# every domain we host\n:rcpthosts control=control  forged: a domain of ours\n!ceo@ours.example  the CEO sends from anywhere\n")
			rep, err := Compile(src, src+".cdb")
			if err != nil {
				t.Fatal(err)
			}
			if rep.Domains != 7 || rep.Entries != 12 {
				t.Errorf("Compile = %+v; want 7 domains, 12 entries", rep)
			}
			wantWarn := []string{
				filepath.Join(ctl, "rcpthosts") + `:7: "not a domain" is not a domain name (invalid character ' ' in host): not protected by ` + src + ":2",
				filepath.Join(ctl, "morercpthosts.cdb") + `: "bad@key" is not a domain name (invalid character '@' in host): not protected by ` + src + ":2",
			}
			if got := warningTexts(rep); !slices.Equal(got, wantWarn) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantWarn, "\n"))
			}
			s, info, err := Load(src)
			if err != nil || info.Compiled {
				t.Fatalf("Load = %+v, %v; want the fresh CDB", info, err)
			}
			defer s.Close()
			for addr, want := range map[string]bool{
				"x@ours.example":          true,
				"x@mail.ours.example":     true,  // its subdomains too
				"ceo@ours.example":        false, // the exception still applies
				"x@a.sub.ours.net":        true,
				"x@sub.ours.net":          false, // ".sub.ours.net": subdomains only, as qmail reads it
				"x@mixed.example":         true,
				"x@[192.0.2.1]":           true,
				"x@hosted.example":        true,
				"x@deep.hosted.example":   true,
				"x@a.virt.example":        true,
				"x@virt.example":          false,
				"x@xn--bcher-kva.example": true,
				"x@notours.example":       false,
				"x@ours.example.evil":     false,
			} {
				m, err := s.Lookup(addr, Scope{})
				if err != nil || m.Blocked() != want {
					t.Errorf("Lookup(%q) = %+v, %v; want blocked %v", addr, m, err, want)
				}
			}
			m, _ := s.Lookup("x@hosted.example", Scope{})
			if m.Block == nil || m.Block.File != src || m.Block.Line != 2 || m.Block.Reason != "forged: a domain of ours" || m.Block.Entry != ":rcpthosts @hosted.example" {
				t.Errorf("rule = %+v", m.Block)
			}
		})
	}
}

// TestRcpthostsRecompile: the automatic recompile notices a change of either control file,
// and keeps the last good CDB when the control files are gone.
func TestRcpthostsRecompile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	writeFile(t, filepath.Join(dir, "rcpthosts"), "ours.example\n")
	writeFile(t, src, ":rcpthosts control=.\n")
	load := func(wantCompiled bool, blocked ...string) LoadInfo {
		t.Helper()
		s, info, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if info.Compiled != wantCompiled {
			t.Errorf("Load = %+v; want compiled %v", info, wantCompiled)
		}
		for _, a := range blocked {
			if m, err := s.Lookup(a, Scope{}); err != nil || !m.Blocked() {
				t.Errorf("Lookup(%q) = %+v, %v; want blocked", a, m, err)
			}
		}
		return info
	}
	v1 := load(true, "x@ours.example").Version
	load(false, "x@ours.example")

	// A new domain in rcpthosts.
	writeFile(t, filepath.Join(dir, "rcpthosts"), "ours.example\nnew.example\n")
	v2 := load(true, "x@new.example").Version
	load(false)
	// morercpthosts.cdb appears, then changes.
	writeMorercpthosts(t, dir, []string{"more.example"}, false)
	load(true, "x@more.example", "x@new.example")
	writeMorercpthosts(t, dir, []string{"more.example", "most.example"}, false)
	v3 := load(true, "x@most.example").Version
	load(false)
	if v1 == v2 || v2 == v3 {
		t.Errorf("versions %s %s %s: want them to differ", v1, v2, v3)
	}

	// rcpthosts removed: the text cannot be compiled, the last good CDB is used.
	if err := os.Remove(filepath.Join(dir, "rcpthosts")); err != nil {
		t.Fatal(err)
	}
	info := load(false, "x@most.example")
	var list *ErrorList
	if !info.LastGood || info.Version != v3 || !errors.As(info.Err, &list) || list.Errors[0].Line != 1 ||
		!strings.Contains(list.Errors[0].Msg, "rcpthosts: no such file or directory") {
		t.Errorf("Load with rcpthosts gone = %+v", info)
	}
}

// TestRcpthostsSameVersion: two hosts with the same domains (in another order, another
// directory, other times) get the same rules version.
func TestRcpthostsSameVersion(t *testing.T) {
	var versions []string
	for i, lines := range []string{"a.example\n.b.example\nc.example\n", "# host 2\nc.example\n\n.b.example\na.example\nA.Example.\n"} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "rcpthosts"), lines)
		writeMorercpthosts(t, dir, []string{"d.example", "e.example"}[i:], false)
		if i == 0 {
			writeFile(t, filepath.Join(dir, "rcpthosts2"), "d.example\n")
		}
		src := filepath.Join(dir, "rules")
		writeFile(t, src, ":rcpthosts control="+dir+"\n")
		when := time.Now().Add(time.Duration(-i) * time.Hour)
		os.Chtimes(src, when, when)
		rep, err := Compile(src, src+".cdb")
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, rep.Version)
	}
	// The first host has d.example in morercpthosts.cdb, the second not: they differ.
	if versions[0] == versions[1] {
		t.Errorf("different domains give the same version %s", versions[0])
	}
	versions = versions[:0]
	for _, lines := range []string{"a.example\n.b.example\n", "# host 2\n.b.example\nA.Example.\n"} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "rcpthosts"), lines)
		src := filepath.Join(dir, "rules")
		writeFile(t, src, ":rcpthosts control="+dir+"\n")
		rep, err := Compile(src, src+".cdb")
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, rep.Version)
	}
	if versions[0] != versions[1] {
		t.Errorf("the same domains give versions %q", versions)
	}
}

// TestRcpthostsErrors: the directive's own mistakes.
func TestRcpthostsErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rcpthosts"), "ours.example\n")
	tests := []struct{ line, want string }{
		{":rcpthost", `unknown directive ":rcpthost": did you mean :rcpthosts?`},
		{":include x", `unknown directive ":include": the one directive is :rcpthosts`},
		{"!:rcpthosts", `"!:rcpthosts": a directive cannot be an exception; write the exceptions as entries (!user@host, !@host, !.host)`},
		{":rcpthosts contrl=" + dir, `unknown option "contrl=` + dir + `": did you mean control=? (:rcpthosts takes control=DIR), and a reason may not start with NAME= (reword it)`},
		{":rcpthosts control=" + dir + " control=" + dir, `"control=` + dir + `": control= given twice`},
		{":rcpthosts control=", `"control=": empty control directory`},
		{":rcpthosts control=" + filepath.Join(dir, "none"), `:rcpthosts: open ` + filepath.Join(dir, "none", "rcpthosts") + `: no such file or directory (qmail-smtpd without it accepts mail for every domain: name the directory with control=DIR)`},
	}
	for _, tt := range tests {
		_, err := parseAll(tt.line, "f")
		if want := "f:1: " + tt.want; err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v\nwant %s", tt.line, err, want)
		}
	}
	// A quoted directory, a reason, and the rules Parse gives.
	got, err := parseAll(`:RcptHosts control="`+dir+`" forged, one of ours`, filepath.Join(dir, "rules"))
	want := []Rule{
		{File: filepath.Join(dir, "rules"), Line: 1, Entry: ":RcptHosts @ours.example", Key: "@ours.example", Reason: "forged, one of ours"},
		{File: filepath.Join(dir, "rules"), Line: 1, Entry: ":RcptHosts .ours.example", Key: ".ours.example", Reason: "forged, one of ours"},
	}
	if err != nil || !slices.EqualFunc(got, want, func(a, b Rule) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("Parse = %+v, %v; want %+v", got, err, want)
	}
	// An empty rcpthosts is a warning: the line protects nothing.
	writeFile(t, filepath.Join(dir, "rcpthosts"), "# none yet\n")
	src := filepath.Join(dir, "rules")
	writeFile(t, src, ":rcpthosts control=.\n")
	rep, err := Compile(src, src+".cdb")
	wantWarn := src + ":1: :rcpthosts: no domain in " + filepath.Join(dir, "rcpthosts") + " or " + filepath.Join(dir, "morercpthosts.cdb") + ": the line protects nothing"
	if err != nil || len(rep.Warnings) != 1 || rep.Warnings[0].String() != wantWarn {
		t.Errorf("Compile = %+v, %v; want the warning %s", rep, err, wantWarn)
	}
}

// TestRcpthostsSnippet compiles the :rcpthosts line the README shows, reading the default
// control directory (a temporary one here).
func TestRcpthostsSnippet(t *testing.T) {
	snippet := testenv.Snippet(t, "rules-rcpthosts")
	ctl := t.TempDir()
	testOnlyDefaultControl = ctl
	defer func() { testOnlyDefaultControl = DefaultControl }()
	writeFile(t, filepath.Join(ctl, "rcpthosts"), "example.com\n")
	writeMorercpthosts(t, ctl, []string{"customer.example"}, false)
	src := compiledList(t, snippet)
	s, _, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for addr, want := range map[string]bool{"x@example.com": true, "x@a.example.com": true, "x@customer.example": true, "news@example.com": false} {
		if m, err := s.Lookup(addr, Scope{}); err != nil || m.Blocked() != want {
			t.Errorf("Lookup(%q) = %+v, %v; want blocked %v", addr, m, err, want)
		}
	}
}
