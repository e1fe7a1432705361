// Command gocat copies fd 0 to fd 1 with io.Copy and nothing else: the floor for a Go
// program, built like the filter (static, CGO_ENABLED=0). The benchmarks show it beside
// cat so that the cost of the Go runtime itself is visible.
package main

import (
	"io"
	"os"
)

func main() {
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		os.Exit(1)
	}
}
