package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// The database login the services use through FerretDB, and its database
// (each service's MongoDB database is a schema in it).
const (
	pgUser     = "crmslack"
	pgDatabase = "crmslack"
)

// pgBin finds PostgreSQL's server binaries: PG_BIN, or Debian's newest
// /usr/lib/postgresql/<version>/bin.
func pgBin(env map[string]string) (string, error) {
	if b := env["PG_BIN"]; b != "" {
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return "", errors.New("PostgreSQL not found in /usr/lib/postgresql/*/bin (apt-get install postgresql, or set PG_BIN)")
	}
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

func pgVersion(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(bin))))
	return v
}

// pgCredential is who PostgreSQL runs as: it refuses root, so as root the
// cluster runs it as the postgres user Debian's package makes.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user (apt-get install postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// startPostgres makes a database cluster of its own in dir on the first
// start (initdb; password logins only) and runs postgres on addr.
func startPostgres(ctx context.Context, bin, dir, addr, password string, out io.Writer) (*proc, error) {
	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := giveTo(dir, cred); err != nil {
			return nil, err
		}
	}
	_, err = os.Stat(filepath.Join(data, "PG_VERSION"))
	fresh := errors.Is(err, os.ErrNotExist)
	if fresh {
		pw := filepath.Join(dir, "initdb.pw")
		if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
			return nil, err
		}
		if cred != nil {
			_ = os.Chown(pw, int(cred.Uid), int(cred.Gid))
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", pgUser, "--pwfile="+pw,
			"--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		b, err := cmd.CombinedOutput()
		_ = os.Remove(pw)
		if err != nil {
			return nil, fmt.Errorf("initdb %s: %w\n%s", data, err, b)
		}
	}
	host, port, _ := net.SplitHostPort(addr)
	p, err := startProc(procSpec{
		name: "postgres", path: filepath.Join(bin, "postgres"), dir: dir, cred: cred,
		args: []string{"-D", data, "-h", host, "-p", port, "-k", dir, "-c", "fsync=on", "-c", "max_connections=200"},
		env:  environ(map[string]string{"LC_ALL": "C.UTF-8"}),
	}, out)
	if err != nil {
		return nil, err
	}
	isReady := func() bool {
		return exec.CommandContext(ctx, filepath.Join(bin, "pg_isready"), "-q", "-h", host, "-p", port).Run() == nil
	}
	if err := p.waitFor(ctx, "accepting connections on "+addr, time.Minute, isReady); err != nil {
		p.kill()
		return nil, err
	}
	if fresh {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "createdb"), "-h", host, "-p", port, "-U", pgUser, pgDatabase)
		cmd.Env = environ(map[string]string{"PGPASSWORD": password})
		if b, err := cmd.CombinedOutput(); err != nil {
			p.kill()
			return nil, fmt.Errorf("createdb %s: %w\n%s", pgDatabase, err, b)
		}
	}
	return p, nil
}

// giveTo makes dir the database user's and lets it reach dir through
// dir's parents (a test's temporary folder is 0700).
func giveTo(dir string, cred *syscall.Credential) error {
	if err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	}); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
	}
	return nil
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
