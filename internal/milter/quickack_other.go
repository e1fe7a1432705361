//go:build !linux

package milter

// Elsewhere delayed ACKs are left as the system has them.
const quickAckSupported = false

func setQuickAck(fd uintptr) {}
