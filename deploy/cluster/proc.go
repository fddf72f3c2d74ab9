package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one child process, in a process group of its own so that a stop
// or a kill reaches whatever it started too, and killed if the runner dies
// (Pdeathsig), so nothing is left behind.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// procSpec is what to run.
type procSpec struct {
	name string
	path string
	args []string
	env  []string
	dir  string
	// cred, if set, runs the process as another user (PostgreSQL refuses root).
	cred *syscall.Credential
}

// startProc starts spec, its output copied line by line to out with the
// process's name in front.
func startProc(spec procSpec, out io.Writer) (*proc, error) {
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: spec.cred}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", spec.name, err)
	}
	p := &proc{name: spec.name, cmd: cmd, done: make(chan struct{})}
	go prefixLines(out, spec.name, pr)
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

var outMu sync.Mutex // one line at a time from every child

func prefixLines(out io.Writer, name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		outMu.Lock()
		fmt.Fprintf(out, "%-12s | %s\n", name, sc.Text())
		outMu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// pid is the process id (and its group's).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited says whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group, as a crash would, and waits.
func (p *proc) kill() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// stop asks the group to stop (SIGTERM), then kills it after grace.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM: killed", p.name, grace)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) && exit.ExitCode() > 0 {
		return fmt.Errorf("%s exited with status %d", p.name, exit.ExitCode())
	}
	return nil
}

// errExited is a process that ended before it was ready.
var errExited = errors.New("the process exited")

// waitFor polls ok until it holds, the process exits, or ctx ends.
func (p *proc) waitFor(ctx context.Context, what string, timeout time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before %s: %v: %w", p.name, what, p.err, errExited)
		case <-ctx.Done():
			return fmt.Errorf("%s: not %s within %s", p.name, what, timeout)
		case <-tick.C:
		}
	}
}

func environ(vars map[string]string) []string {
	out := make([]string, 0, len(vars)+2)
	// PATH and HOME only from the runner's own: nothing else leaks in.
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			if _, set := vars[k]; !set {
				out = append(out, k+"="+v)
			}
		}
	}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}
