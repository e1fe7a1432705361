package main

import (
	"fmt"
	"os"
	"testing"

	"block-forged-sender/internal/testenv"
)

// binDir holds the programs as make build builds them: the daemon, and
// block-forged-sender, whose milter command runs it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := testenv.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	os.Exit(testenv.Main(m))
}
