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
	pgCPU := func() int64 {
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
