package pgarchive

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/internal/testenv"
)

// BenchmarkUpsert measures what archiving costs per task in CPU, the
// resource the archive takes from the core on a small machine: one op is
// one relay delivery of 1000 finished tasks of 4 tenants, each tenant's
// tasks covered by proof envelopes of 250 tasks (~17 KB, like a report
// batch's), written through archive.Store. It reports, per task, the CPU
// of this process (greyd's side: encoding, validation, pgx) and of the
// PostgreSQL backends serving the pool (found by application_name; WAL
// writer and checkpointer not included), in microseconds. Wall time
// depends on the machine's load; the CPU per task much less.
//
//	eval "$(scripts/services.sh env)"; go test -run '^$' -bench Upsert -benchtime 30x ./archive/pgarchive
//
// GREY_BENCH_UPSERT_PRE is SQL run as the schema owner after the
// migration, to try a schema change before writing its migration (for
// example "DROP INDEX grey_archive.some_index").
func BenchmarkUpsert(b *testing.B) {
	ctx := context.Background()
	db := pgtest.Scratch(b, testenv.ServiceURL(b, "postgres"))
	if _, _, err := Migrate(ctx, db.OwnerURL, db.AppURL); err != nil {
		b.Fatal(err)
	}
	if pre := os.Getenv("GREY_BENCH_UPSERT_PRE"); pre != "" {
		oc, err := pgx.Connect(ctx, db.OwnerURL)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := oc.Exec(ctx, pre); err != nil {
			b.Fatal(err)
		}
		oc.Close(ctx)
	}
	app := "grey_upsert_bench_" + strconv.Itoa(os.Getpid())
	sep := "?"
	if strings.Contains(db.AppURL, "?") {
		sep = "&"
	}
	d, err := Open(ctx, db.AppURL+sep+"application_name="+app, archive.OpenOptions{PoolSize: 4})
	if err != nil {
		b.Fatal(err)
	}
	// GREY_BENCH_UPSERT_NOCOPY=1 sends the rows as arrays (the path
	// before COPY), to compare.
	d.noCopy.Store(os.Getenv("GREY_BENCH_UPSERT_NOCOPY") == "1")
	s, err := archive.New(d, archive.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer owner.Close(ctx)

	// ~17 KB envelope per 250 tasks
	sig := strings.Repeat("A", 16*1024)
	const batch, perEnv = 1000, 250
	now := time.Now()
	batches := make([][]archive.Record, b.N)
	for i := range batches {
		recs := make([]archive.Record, batch)
		var env json.RawMessage
		for j := range recs {
			if j%perEnv == 0 {
				env = json.RawMessage(fmt.Sprintf(`{"payloadType":"application/vnd.in-toto+json","payload":"%s","signatures":[{"keyid":"k%d-%d","sig":"x"}]}`, sig, i, j))
			}
			fin := now.Add(time.Duration(i*batch+j) * time.Microsecond)
			r := archivetest.Make(archivetest.Spec{Tenant: "bench-" + strconv.Itoa(j%4+1), Finished: fin, Proof: env})
			r.Task.ProofID = fmt.Sprintf("%x", sha256.Sum256(env))
			recs[j] = r
		}
		batches[i] = recs
	}
	// warm: partitions, connections, plans
	if err := s.Upsert(ctx, batches[0]); err != nil {
		b.Fatal(err)
	}
	pgCPU := func() int64 { return backendCPU(ctx, b, owner, app) }
	selfCPU := func() int64 {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
	}
	p0, c0 := pgCPU(), selfCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i == 0 {
			continue // written above
		}
		if err := s.Upsert(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64((b.N - 1) * batch)
	if n > 0 {
		b.ReportMetric(float64(selfCPU()-c0)/n, "client-cpu-us/task")
		b.ReportMetric(float64(pgCPU()-p0)/n, "pg-cpu-us/task")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/n, "wall-us/task")
	}
}

// backendCPU is the CPU, in microseconds, that the PostgreSQL backends of
// the connections named app have used, read from /proc (0 when
// PostgreSQL runs on another machine).
func backendCPU(ctx context.Context, b *testing.B, owner *pgx.Conn, app string) int64 {
	rows, err := owner.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	for _, p := range pids {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(int(p)) + "/stat")
		if err != nil {
			continue // PostgreSQL on another machine: no server CPU
		}
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return ticks * 10_000 // USER_HZ 100 → µs
}

// BenchmarkInsertFloor measures the least CPU PostgreSQL can spend per
// archived task in the archive's schema, whatever the driver does: one op
// inserts 1000 rows (4 tenants, each in its own transaction under its
// tenant setting, as the driver writes) into grey_archive.tasks with one
// INSERT … SELECT from rows already in the server (a session temporary
// table filled once before the timer, with the encoded task of
// archivetest.Make, ~1.3 KB), so nothing is parsed, sent, staged or
// probed. Only the table's own work remains: partition routing, the
// row-level security check, the heap row, its primary key entry and WAL.
// It reports pg-cpu-us/row beside BenchmarkUpsert's pg-cpu-us/task: the
// driver's overhead is the difference, and the floor is what any design
// that stores a row per task pays on the same cores as the core.
//
//	eval "$(scripts/services.sh env)"; go test -run '^$' -bench 'Upsert|InsertFloor' -benchtime 30x ./archive/pgarchive
func BenchmarkInsertFloor(b *testing.B) {
	ctx := context.Background()
	db := pgtest.Scratch(b, testenv.ServiceURL(b, "postgres"))
	if _, _, err := Migrate(ctx, db.OwnerURL, db.AppURL); err != nil {
		b.Fatal(err)
	}
	app := "grey_floor_bench_" + strconv.Itoa(os.Getpid())
	sep := "?"
	if strings.Contains(db.AppURL, "?") {
		sep = "&"
	}
	c, err := pgx.Connect(ctx, db.AppURL+sep+"application_name="+app)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer owner.Close(ctx)

	const batch, tenants = 1000, 4
	now := time.Now().UTC()
	r := archivetest.Make(archivetest.Spec{Tenant: "bench-1", Finished: now})
	bare := *r.Task
	bare.Payload, bare.Result = nil, nil
	tj, err := json.Marshal(&bare)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TEMPORARY TABLE src (n int, task text, payload text, result text)`); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO src SELECT n, $1, $2, $3 FROM generate_series(0, $4 - 1) n`,
		string(tj), string(r.Task.Payload), string(r.Task.Result), batch/tenants); err != nil {
		b.Fatal(err)
	}
	// every op's rows finish today: one partition, made here
	if _, err := c.Exec(ctx, `SELECT grey_archive.ensure_partitions(ARRAY[$1::date])`, now.Format("2006-01-02")); err != nil {
		b.Fatal(err)
	}
	insert := func(i int) {
		for t := 1; t <= tenants; t++ {
			tenant := "bench-" + strconv.Itoa(t)
			err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('grey.tenant_id', $1, true)`, tenant); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO grey_archive.tasks (tenant_id, id, finished_at, status, kind, labels, task, payload, result, proof_id)
SELECT $1, gen_random_uuid(), $2::timestamptz + n * interval '1 microsecond', 'completed', 'noop', '{}', task, payload, result, $3 FROM src`,
					tenant, now, fmt.Sprintf("%x", sha256.Sum256([]byte(strconv.Itoa(i)))))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	insert(0) // warm: plans, buffers
	p0 := backendCPU(ctx, b, owner, app)
	b.ResetTimer()
	for i := 1; i < b.N; i++ {
		insert(i)
	}
	b.StopTimer()
	if n := float64((b.N - 1) * batch); n > 0 {
		b.ReportMetric(float64(backendCPU(ctx, b, owner, app)-p0)/n, "pg-cpu-us/row")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/n, "wall-us/row")
	}
}
