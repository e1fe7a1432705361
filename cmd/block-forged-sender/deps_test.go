package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// drbgMemory is the 32 MiB BSS that any crypto/* package brings (Go's FIPS 140 DRBG); qmail
// runs this program under softlimit, where it does not fit.
const drbgMemory = "crypto/internal/fips140/drbg.memory"

// TestNoCrypto: the per-message program imports no crypto/* package, and neither the
// PostgreSQL driver nor the milter library (which link them), and its binary has no
// drbg.memory; the sync program, which does link them, shows that the check can fail.
func TestNoCrypto(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not in PATH: %v", err)
	}
	out, err := exec.Command(gotool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list -deps gave %d packages", len(deps))
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "crypto/") || strings.Contains(p, "jackc/pgx") || strings.Contains(p, "go-milter") || p == "block-forged-sender/internal/pgsync" {
			t.Errorf("block-forged-sender imports %s", p)
		}
	}
	symbols := func(prog string) string {
		out, err := exec.Command(gotool, "tool", "nm", filepath.Join(binDir, prog)).Output()
		if err != nil {
			t.Fatalf("go tool nm %s: %v", prog, err)
		}
		return string(out)
	}
	if strings.Contains(symbols("block-forged-sender"), drbgMemory) {
		t.Errorf("the built block-forged-sender holds %s", drbgMemory)
	}
	if !strings.Contains(symbols("block-forged-sender-sync"), drbgMemory) {
		t.Errorf("block-forged-sender-sync has no %s: the check above proves nothing", drbgMemory)
	}
}
