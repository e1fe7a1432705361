package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadSnippet(t *testing.T) {
	md := "# x\n\n<!-- snippet a -->\n\n    line 1\n      indented\n\n    line 3\n\nprose\n\n    not part of it\n<!-- snippet empty -->\nprose\n"
	file := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(file, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnippet(file, "a")
	if want := "line 1\n  indented\n\nline 3\n"; err != nil || got != want {
		t.Errorf("ReadSnippet(a) = %q, %v; want %q", got, err, want)
	}
	if _, err := ReadSnippet(file, "missing"); err == nil {
		t.Error("ReadSnippet(missing) gave no error")
	}
	if _, err := ReadSnippet(file, "empty"); err == nil {
		t.Error("ReadSnippet(empty) gave no error")
	}
}

func TestLogFields(t *testing.T) {
	line := `block-forged-sender: verdict=reject reason="forged: \"x\" used" rule=r:1 warning=`
	f, err := LogFields(line)
	if err != nil || len(f) != 4 || f["verdict"] != "reject" || f["reason"] != `"forged: \"x\" used"` || f["rule"] != "r:1" || f["warning"] != "" {
		t.Errorf("LogFields = %q, %v", f, err)
	}
	v, err := LogValues(line)
	if err != nil || v["reason"] != `forged: "x" used` {
		t.Errorf("LogValues = %q, %v", v, err)
	}
	if f, err := LogFields(`verdict=pass reason="open`); err == nil || f["verdict"] != "pass" {
		t.Errorf("an open quote: %q, %v", f, err)
	}
	if !HasLogFields(line, `rule=r:1 warning= verdict=reject`) || HasLogFields(line, `verdict=pass`) || HasLogFields(line, `client=`) {
		t.Error("HasLogFields")
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tt := range []struct {
		p    int
		want time.Duration
	}{{50, 5}, {90, 9}, {100, 10}, {1, 1}} {
		if got := Percentile(ds, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %d) = %d, want %d", ds, tt.p, got, tt.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil, 50) = %d, want 0", got)
	}
}
