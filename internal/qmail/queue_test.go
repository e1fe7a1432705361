package qmail

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestStartQueue runs a qmail-queue stand-in (a shell script) through StartQueue: it gets
// the message on fd 0 and the envelope on fd 1, and its exit code comes back.
func TestStartQueue(t *testing.T) {
	dir := t.TempDir()
	queue := filepath.Join(dir, "qmail-queue")
	script := "#!/bin/sh\ncat >\"" + dir + "/message\"\ncat <&1 >\"" + dir + "/envelope\"\n[ -s \"" + dir + "/envelope\" ] || exit 54\n"
	if err := os.WriteFile(queue, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	q, err := StartQueue(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Message.WriteString("Subject: x\n\nbody\n")
	env := "Fa@b.example\x00Tc@d.example\x00\x00"
	if code, err := q.Commit([]byte(env)); code != 0 || err != nil {
		t.Fatalf("Commit = %d, %v", code, err)
	}
	msg, _ := os.ReadFile(filepath.Join(dir, "message"))
	got, _ := os.ReadFile(filepath.Join(dir, "envelope"))
	if string(msg) != "Subject: x\n\nbody\n" || string(got) != env {
		t.Errorf("qmail-queue got %q and %q", msg, got)
	}

	q, err = StartQueue(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Message.WriteString("Subject: x\n\nbody\n")
	if code, err := q.Wait(); code != 54 || err != nil {
		t.Errorf("without an envelope: Wait = %d, %v; want 54", code, err)
	}
}

// TestStartQueueCannotRun: a qmail-queue that cannot be run is an error wrapping ErrQueue
// that names it and the reason (the program exits 81 for it).
func TestStartQueueCannotRun(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "missing"), "qmail: qmail-queue: fork/exec " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"not executable", noexec, "qmail: qmail-queue: fork/exec " + noexec + ": permission denied"},
		{"a directory", dir, "qmail: qmail-queue: fork/exec " + dir + ": permission denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := StartQueue(tt.path, nil)
			if q != nil || !errors.Is(err, ErrQueue) || err.Error() != tt.want {
				t.Errorf("StartQueue = %v, %v; want %q", q, err, tt.want)
			}
		})
	}
}
