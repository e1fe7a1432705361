// Command limits is internal/rlimit's test program, built with the entry (-ldflags=-E=...).
// "limits" prints what the entry found; "exec PROGRAM ARGS..." runs PROGRAM with
// rlimit.Start, its output on ours, and exits with its exit code (126 and the error on
// stderr when Start fails).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"block-forged-sender/internal/rlimit"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: limits limits | exec PROGRAM ARGS...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "limits":
		as, asRaised := rlimit.Original(rlimit.AS)
		data, dataRaised := rlimit.Original(rlimit.Data)
		b, ok := rlimit.Budget()
		fmt.Printf("entry=%v as=%d/%v data=%d/%v budget=%d/%v needas=%d needdata=%d\n", rlimit.EntryRan(),
			as, asRaised, data, dataRaised, b, ok, rlimit.Need(rlimit.AS), rlimit.Need(rlimit.Data))
	case "exec":
		cmd := exec.Command(os.Args[2], os.Args[3:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := rlimit.Start(cmd); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(126)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(126)
		}
	}
}
