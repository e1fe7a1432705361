package qmail

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"block-forged-sender/internal/rlimit"
)

// Queue is a running qmail-queue child: the message goes into Message, and the envelope,
// written only after the whole message, into the envelope pipe. qmail-queue queues nothing
// unless it reads a complete envelope, so [Queue.Abort] refuses the message without any
// temporary file of ours.
type Queue struct {
	Message  *os.File // the child's fd 0
	envelope *os.File // the child's fd 1
	cmd      *exec.Cmd
}

// ErrQueue wraps failures to run the real qmail-queue.
var ErrQueue = errors.New("qmail: qmail-queue")

// StartQueue starts the real qmail-queue at path with pipes on its fd 0 and fd 1. It
// inherits fd 2 and nothing else: fd 6 stays ours, since qmail-smtpd waits for every holder
// of the custom-error pipe to close it before it answers. It runs under the memory limits
// this program was started with, not the ones internal/rlimit raised (see [rlimit.Start]).
func StartQueue(path string, stderr *os.File) (*Queue, error) {
	msgR, msgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQueue, err)
	}
	envR, envW, err := os.Pipe()
	if err != nil {
		msgR.Close()
		msgW.Close()
		return nil, fmt.Errorf("%w: %v", ErrQueue, err)
	}
	cmd := &exec.Cmd{Path: path, Args: []string{path}, Stdin: msgR, Stdout: envR, Stderr: stderr}
	if err := rlimit.Start(cmd); err != nil {
		msgR.Close()
		msgW.Close()
		envR.Close()
		envW.Close()
		return nil, fmt.Errorf("%w: %v", ErrQueue, err)
	}
	msgR.Close()
	envR.Close()
	return &Queue{Message: msgW, envelope: envW, cmd: cmd}, nil
}

// Commit closes the message, writes the envelope, and returns the exit code of qmail-queue.
// An exit by a signal is an error.
func (q *Queue) Commit(env []byte) (int, error) {
	errMsg := q.Message.Close()
	_, errEnv := q.envelope.Write(env)
	errClose := q.envelope.Close()
	code, err := q.wait()
	if err != nil {
		return code, err
	}
	if code != 0 {
		return code, nil // qmail-queue's own verdict, e.g. 53 for a full disk
	}
	if err := errors.Join(errMsg, errEnv, errClose); err != nil {
		// qmail-queue said 0 though we could not hand it everything: cannot happen with a
		// real qmail-queue; never call it success.
		return ExitInternalBug, fmt.Errorf("%w: exit 0 after a short write: %v", ErrQueue, err)
	}
	return 0, nil
}

// Abort closes both pipes without an envelope, so qmail-queue cleans up and queues
// nothing, and waits for it.
func (q *Queue) Abort() {
	q.Message.Close()
	q.envelope.Close()
	q.wait()
}

// Kill stops a hanging qmail-queue; the message is not queued since no envelope was sent.
func (q *Queue) Kill() {
	if q.cmd.Process != nil {
		q.cmd.Process.Kill()
	}
}

// wait reaps qmail-queue and returns its exit code; a death by signal is an error.
func (q *Queue) wait() (int, error) {
	err := q.cmd.Wait()
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ExitInternalBug, fmt.Errorf("%w: killed by signal %v", ErrQueue, ws.Signal())
		}
		return ee.ExitCode(), nil
	}
	return ExitInternalBug, fmt.Errorf("%w: %v", ErrQueue, err)
}

// Wait closes the pipes and waits for qmail-queue, returning its exit code: for when the
// message could not be written because qmail-queue stopped reading.
func (q *Queue) Wait() (int, error) {
	q.Message.Close()
	q.envelope.Close()
	return q.wait()
}
