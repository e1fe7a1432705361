package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const manPage = "../../docs/block-forged-sender.8"

// helpFlag is one flag line of a command's --help: "  --rules FILE, BFS_RULES".
var helpFlag = regexp.MustCompile(`(?m)^  --([a-z-]+)(?: [A-Z]+)?, BFS_[A-Z]+$`)

// manFlag is a flag written in the manual page: \-\-rules.
var manFlag = regexp.MustCompile(`\\-\\-([a-z]+(?:\\-[a-z]+)*)`)

// TestManPage keeps docs/block-forged-sender.8 honest: every flag of every command's --help
// is documented there, every flag it documents exists, and groff formats it without a
// warning.
func TestManPage(t *testing.T) {
	src, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	page := string(src)
	documented := map[string]bool{}
	for _, m := range manFlag.FindAllStringSubmatch(page, -1) {
		documented[strings.ReplaceAll(m[1], `\-`, "-")] = true
	}
	real := map[string]bool{"help": true} // --help of every command
	for _, cmd := range []string{"filter", "queue", "check", "compile", "milter", "sync"} {
		res := proc{args: []string{cmd, "--help"}}.run(t)
		for _, m := range helpFlag.FindAllStringSubmatch(string(res.stdout), -1) {
			real[m[1]] = true
			if !documented[m[1]] {
				t.Errorf("%s --%s is not in %s", cmd, m[1], manPage)
			}
		}
	}
	if len(real) < 20 {
		t.Fatalf("found only %d flags in the --help texts: %v", len(real), real)
	}
	for f := range documented {
		if !real[f] {
			t.Errorf("%s documents --%s, which no command has", manPage, f)
		}
	}

	groff, err := exec.LookPath("groff")
	if err != nil {
		if os.Getenv("BFS_REQUIRE_TOOLS") == "1" {
			t.Fatal("groff (Debian's groff-base) is needed to check the manual page")
		}
		t.Skip("groff not installed: the manual page is not formatted")
	}
	// -ww: every warning; -z: no output but the diagnostics.
	out, err := exec.Command(groff, "-man", "-ww", "-z", "-Tutf8", manPage).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("groff -man -ww %s: %v\n%s", manPage, err, out)
	}
}
