//go:build linux

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a new pseudo-terminal's controller and its terminal.
func openPTY(t *testing.T) (controller, term *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { controller.Close() })
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	term, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	return controller, term
}

// TestMakeRunCtrlCExitsZero runs `make run` in a terminal of its own, as a
// developer does, and types Ctrl-C: the terminal sends SIGINT to its
// foreground process group, and make, the shell and the runner must all
// end with status 0 and no "make: ***" error.
func TestMakeRunCtrlCExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the runner through make")
	}
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	controller, term := openPTY(t)
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "run", "LOCAL_BIN="+filepath.Join(t.TempDir(), "local"))
	cmd.Stdin = term
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	environ, _ := testEnviron(t)
	cmd.Env = append(os.Environ(), environ...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	session := -cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(session, syscall.SIGKILL) })
	up := make(chan struct{})
	var lines syncBuffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Ctrl-C stops everything") {
				close(up)
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(3 * time.Minute):
		t.Fatalf("not up within 3 minutes:\n%s\n%s", lines.String(), stderr.String())
	}
	if _, err := controller.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("make run after Ctrl-C: %v\n%s\n%s", err, lines.String(), stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("did not exit within 30 s of Ctrl-C:\n%s\n%s", lines.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "make: ***") {
		t.Errorf("make reported an error:\n%s", stderr.String())
	}
	if !strings.Contains(lines.String(), "stopped") {
		t.Errorf("the runner did not stop cleanly:\n%s", lines.String())
	}
}
