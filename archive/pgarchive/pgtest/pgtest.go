// Package pgtest gives tests PostgreSQL databases for the archive: Start
// runs a private PostgreSQL server that a test may kill and restart;
// Scratch makes a throw-away database and login role on a running server
// (GREY_TEST_POSTGRES_URL).
//
// Start uses the server binaries of the machine (/usr/lib/postgresql/*/bin,
// as scripts/services.sh finds them); as root it runs them as the postgres
// user. Without binaries it skips the test, except in CI
// (internal/testenv), where it fails it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grey-distributed/grey/internal/testenv"
)

// Instance is a private PostgreSQL server of one test, listening on
// 127.0.0.1 on its own port, with password authentication (scram-sha-256).
type Instance struct {
	t       testing.TB
	bin     string
	dir     string
	data    string
	port    int
	ownerPW string
	appPW   string
	asPG    bool

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Names of the roles and database an Instance creates.
const (
	// OwnerUser is the bootstrap superuser (the schema owner of tests).
	OwnerUser = "postgres"
	// AppUser is a login role without SUPERUSER and BYPASSRLS.
	AppUser = "grey_app"
	// Database is the database both URLs name.
	Database = "grey"
)

// BinDir returns the directory of the PostgreSQL server binaries, "" when
// there is none.
func BinDir() string {
	if d := os.Getenv("GREY_PG_BINDIR"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	return ""
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// Start initialises and starts a private PostgreSQL server in a temporary
// directory, creates AppUser and Database, and stops the server when the
// test ends.
func Start(t testing.TB) *Instance {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		msg := "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql-15, or scripts/services.sh up postgres)"
		if testenv.InCI() {
			t.Fatal("CI=true and " + msg)
		}
		t.Skip(msg)
	}
	in := &Instance{t: t, bin: bin, dir: t.TempDir(), ownerPW: randHex(12), appPW: randHex(12)}
	in.data = filepath.Join(in.dir, "data")
	in.asPG = os.Geteuid() == 0
	if in.asPG {
		if err := in.prepareForPostgresUser(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	pwfile := filepath.Join(in.dir, "pw")
	if err := os.WriteFile(pwfile, []byte(in.ownerPW+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := in.command(filepath.Join(bin, "initdb"), "-D", in.data, "-U", OwnerUser,
		"--auth=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwfile)
	in.port = freePort(t)
	t.Cleanup(in.stop)
	in.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, in.url(OwnerUser, in.ownerPW, "postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		fmt.Sprintf(`CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '%s'`, AppUser, in.appPW),
		`CREATE DATABASE ` + Database,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: %s: %v", strings.Fields(q)[0]+" "+strings.Fields(q)[1], err)
		}
	}
	return in
}

// prepareForPostgresUser makes the temporary directory the postgres
// user's and its parents traversable by it (PostgreSQL refuses to run as
// root).
func (in *Instance) prepareForPostgresUser() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres user (apt-get install postgresql-15): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(in.dir, uid, gid); err != nil {
		return err
	}
	for p := filepath.Dir(in.dir); p != "/"; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
	}
	return nil
}

// command runs a PostgreSQL binary, as the postgres user when root.
func (in *Instance) command(name string, args ...string) *exec.Cmd {
	if in.asPG {
		return exec.Command("setpriv", append([]string{"--reuid=postgres", "--regid=postgres", "--init-groups", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (in *Instance) start() {
	in.t.Helper()
	var lastErr error
	for try := 0; try < 50; try++ {
		cmd := in.command(filepath.Join(in.bin, "postgres"), "-D", in.data, "-p", strconv.Itoa(in.port),
			"-k", in.dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=50",
			"-c", "shared_buffers=16MB", "-c", "fsync=off", "-c", "full_page_writes=off")
		// its own process group: Kill takes the backends down with it
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		logf, err := os.OpenFile(filepath.Join(in.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			in.t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			in.t.Fatalf("pgtest: start postgres: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); logf.Close() }()
		if err := in.waitReady(done); err != nil {
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		in.mu.Lock()
		in.cmd = cmd
		in.mu.Unlock()
		return
	}
	log, _ := os.ReadFile(filepath.Join(in.dir, "postgres.log"))
	in.t.Fatalf("pgtest: postgres did not start: %v\n%s", lastErr, tail(string(log), 2000))
}

// waitReady waits until the server accepts connections, or exits.
func (in *Instance) waitReady(exited chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("postgres exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, in.url(OwnerUser, in.ownerPW, "postgres"))
		if err == nil {
			_ = c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("postgres did not accept connections in 30s")
}

// Kill kills the server and its backends with SIGKILL, as a crash would.
func (in *Instance) Kill() {
	in.mu.Lock()
	cmd := in.cmd
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(-cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts the server again after Kill (crash recovery runs), on
// the same port and data. It kills a running server first.
func (in *Instance) Restart() {
	in.t.Helper()
	in.Kill()
	in.start()
}

// stop shuts the server down (fast shutdown), killing it when it lingers.
func (in *Instance) stop() {
	in.mu.Lock()
	cmd := in.cmd
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	for i := 0; i < 250; i++ {
		if syscall.Kill(cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// Port returns the server's TCP port.
func (in *Instance) Port() int { return in.port }

// OwnerURL connects to Database as the superuser OwnerUser.
func (in *Instance) OwnerURL() string { return in.url(OwnerUser, in.ownerPW, Database) }

// AppURL connects to Database as AppUser (no SUPERUSER, no BYPASSRLS).
func (in *Instance) AppURL() string { return in.url(AppUser, in.appPW, Database) }

// URL connects to db as user with password.
func (in *Instance) URL(user, password, db string) string { return in.url(user, password, db) }

func (in *Instance) url(user, pw, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// DB is a scratch database on a running server, with its own login role.
type DB struct {
	// Name is the database's name.
	Name string
	// OwnerURL connects to it as the server URL's user (the schema owner).
	OwnerURL string
	// AppUser is a login role without SUPERUSER and BYPASSRLS.
	AppUser string
	// AppURL connects to it as AppUser.
	AppURL string
}

// Scratch creates a database and a login role with unique names on the
// server of serverURL (a superuser's URL, e.g. GREY_TEST_POSTGRES_URL) and
// drops both when the test ends.
func Scratch(t testing.TB, serverURL string) DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		t.Fatalf("pgtest: connect %s: %v", redacted(serverURL), err)
	}
	defer c.Close(ctx)
	suffix := randHex(5)
	db := DB{Name: "grey_test_" + suffix, AppUser: "grey_app_" + suffix}
	pw := randHex(12)
	for _, q := range []string{
		`CREATE DATABASE ` + db.Name,
		fmt.Sprintf(`CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '%s'`, db.AppUser, pw),
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	t.Cleanup(func() { drop(serverURL, db) })
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db.Name
	db.OwnerURL = u.String()
	u.User = url.UserPassword(db.AppUser, pw)
	db.AppURL = u.String()
	return db
}

func drop(serverURL string, db DB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return
	}
	defer c.Close(ctx)
	_, _ = c.Exec(ctx, `DROP DATABASE IF EXISTS `+db.Name+` WITH (FORCE)`)
	_, _ = c.Exec(ctx, `DROP ROLE IF EXISTS `+db.AppUser)
}

func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(url)"
	}
	return u.Redacted()
}
