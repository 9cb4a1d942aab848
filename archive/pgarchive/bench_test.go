package pgarchive

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/internal/testenv"
)

// benchEnv turns TestReadLatencyAtScale on and says how many rows it
// loads (bench/archive_pg.sh sets it).
const benchEnv = "GREY_BENCH_ARCHIVE_PG_ROWS"

// TestReadLatencyAtScale loads GREY_BENCH_ARCHIVE_PG_ROWS archived tasks
// across 100 tenants and 30 days into a scratch database with COPY (as
// the owner), then measures through the portable Store, connected as the
// tenant-scoped app role: get by id, a tenant's first page of its newest
// 100, and next pages by cursor. It reports p50 and p99 and asserts
// nothing about speed (bench/README.md holds the numbers).
func TestReadLatencyAtScale(t *testing.T) {
	rowsWanted, _ := strconv.Atoi(os.Getenv(benchEnv))
	if rowsWanted <= 0 {
		t.Skipf("%s is not set (bench/archive_pg.sh runs this)", benchEnv)
	}
	const tenants, days = 100, 30
	ctx := context.Background()
	db := pgtest.Scratch(t, testenv.ServiceURL(t, "postgres"))
	if _, _, err := Migrate(ctx, db.OwnerURL, db.AppURL); err != nil {
		t.Fatal(err)
	}
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)

	end := time.Now().UTC().Truncate(time.Microsecond)
	start := end.Add(-days * 24 * time.Hour)
	var dates []time.Time
	for d := start.Truncate(24 * time.Hour); !d.After(end); d = d.Add(24 * time.Hour) {
		dates = append(dates, d)
	}
	if _, err := owner.Exec(ctx, `SELECT grey_archive.ensure_partitions($1::date[])`, dates); err != nil {
		t.Fatal(err)
	}

	// Rows in finish-time order; every 250th id is kept for the gets.
	rng := rand.New(rand.NewPCG(1, 2))
	step := end.Sub(start) / time.Duration(rowsWanted)
	var sample []struct{ tenant, id string }
	i := 0
	buf := make([]byte, 0, 512)
	load := time.Now()
	n, err := owner.CopyFrom(ctx, pgx.Identifier{"grey_archive", "tasks"},
		[]string{"tenant_id", "id", "finished_at", "status", "kind", "labels", "task", "payload", "result"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= rowsWanted {
				return nil, nil
			}
			fin := start.Add(time.Duration(i) * step)
			created := fin.Add(-time.Duration(rng.IntN(600_000)) * time.Millisecond)
			id := v7(created, rng)
			tenant := "tenant-" + strconv.Itoa(rng.IntN(tenants))
			if i%250 == 0 {
				sample = append(sample, struct{ tenant, id string }{tenant, id})
			}
			i++
			buf = fmt.Appendf(buf[:0], `{"id":%q,"tenant_id":%q,"kind":"bench","status":"completed","attempt":1,`+
				`"attempts":[{"n":1,"worker_id":"worker-%d","leased_at":%q,"finished_at":%q,"outcome":"completed"}],`+
				`"created_at":%q,"updated_at":%q,"started_at":%q,"finished_at":%q,`+
				`"usage":{"cpu_seconds":0.012,"wall_seconds":0.02},"cost_usd":0.0000012,"index":%d}`,
				id, tenant, i%16, created.Format(time.RFC3339Nano), fin.Format(time.RFC3339Nano),
				created.Format(time.RFC3339Nano), fin.Format(time.RFC3339Nano), created.Format(time.RFC3339Nano), fin.Format(time.RFC3339Nano), i)
			return []any{tenant, id, fin, "completed", "bench", "{}", string(buf), `{"n":` + strconv.Itoa(i) + `}`, `{"ok":true}`}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	loadTook := time.Since(load)
	if _, err := owner.Exec(ctx, `ANALYZE grey_archive.tasks`); err != nil {
		t.Fatal(err)
	}
	var size string
	_ = owner.QueryRow(ctx, `SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'grey_archive.tasks'::regclass`).Scan(&size)
	t.Logf("loaded %d rows (%d tenants, %d daily partitions, %s) with COPY in %s (%.0f rows/s, analyze included after)",
		n, tenants, len(dates), size, loadTook.Round(time.Second), float64(n)/loadTook.Seconds())

	appURL := db.AppURL
	if extra := os.Getenv("GREY_BENCH_ARCHIVE_PG_URL_QUERY"); extra != "" {
		appURL += "&" + extra
	}
	d, err := Open(ctx, appURL, archive.OpenOptions{PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	get := func(bound bool) func() error {
		return func() error {
			x := sample[rng.IntN(len(sample))]
			d.noIDPruning = !bound
			_, err := s.Get(ctx, x.tenant, x.id)
			d.noIDPruning = false
			return err
		}
	}
	// Next pages: a cursor at a random depth of a random tenant (pages 2
	// to 200).
	cursors := map[string][]string{}
	for k := 0; k < 20; k++ {
		ten := "tenant-" + strconv.Itoa(k)
		next := ""
		for pg := 0; pg < 200; pg++ {
			p, err := s.List(ctx, ten, archive.Query{Limit: 100, Cursor: next})
			if err != nil {
				t.Fatal(err)
			}
			if p.Next == "" {
				break
			}
			if next != "" { // a cursor whose page is followed by another
				cursors[ten] = append(cursors[ten], next)
			}
			next = p.Next
		}
	}
	page := func(cursor, window bool) func() error {
		return func() error {
			d.noListWindow = !window
			defer func() { d.noListWindow = false }()
			q := archive.Query{Limit: 100}
			ten := "tenant-" + strconv.Itoa(rng.IntN(tenants))
			if cursor {
				ten = "tenant-" + strconv.Itoa(rng.IntN(20))
				cs := cursors[ten]
				q.Cursor = cs[rng.IntN(len(cs))]
			}
			p, err := s.List(ctx, ten, q)
			if err == nil && len(p.Records) != 100 {
				err = fmt.Errorf("%d records", len(p.Records))
			}
			return err
		}
	}
	ops := []struct {
		name string
		f    func() error
		lat  []time.Duration
	}{
		{name: "get by id", f: get(true)},
		{name: "get by id (no UUIDv7 partition bound)", f: get(false)},
		{name: "first page (newest 100)", f: page(false, true)},
		{name: "next page (cursor, depth 2..200)", f: page(true, true)},
		{name: "first page (all partitions)", f: page(false, false)},
		{name: "next page (all partitions)", f: page(true, false)},
	}
	// Interleaved, so that every operation meets the same load of this
	// (shared) machine.
	const rounds = 2000
	load0, _ := os.ReadFile("/proc/loadavg")
	for r := -200; r < rounds; r++ { // 200 warm-up rounds: pool, caches, plans
		for i := range ops {
			t0 := time.Now()
			if err := ops[i].f(); err != nil {
				t.Fatalf("%s: %v", ops[i].name, err)
			}
			if r >= 0 {
				ops[i].lat = append(ops[i].lat, time.Since(t0))
			}
		}
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d interleaved rounds; load average before %s, after %s", rounds,
		strings.Join(strings.Fields(string(load0))[:3], " "), strings.Join(strings.Fields(string(load1))[:3], " "))
	for _, op := range ops {
		lat := op.lat
		slices.Sort(lat)
		p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
		t.Logf("%-40s p50 %8s  p90 %8s  p99 %8s  max %8s", op.name, p(0.50).Round(time.Microsecond),
			p(0.90).Round(time.Microsecond), p(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	}

	// Where the time goes: the plans and server-side times of the three
	// reads, as the app role under a tenant.
	var pl *pgxpool.Pool
	d.As(&pl)
	x := sample[0]
	firstCursor := cursors["tenant-0"][0]
	c0, _ := archive.DecodeCursor(firstCursor, "tenant-0", archive.Filter{})
	for _, q := range []struct {
		name, tenant, sql string
		args              []any
	}{
		{"get", x.tenant, getSQL, []any{x.tenant, x.id, lowerBound(x.id)}},
		{"first page", "tenant-0", `SELECT ` + columns + ` FROM ` + Schema + `.tasks WHERE tenant_id = $1 ORDER BY id DESC LIMIT 101`, []any{"tenant-0"}},
		{"next page", "tenant-0", `SELECT ` + columns + ` FROM ` + Schema + `.tasks WHERE tenant_id = $1 AND id < $2::uuid ORDER BY id DESC LIMIT 101`, []any{"tenant-0", c0.Before}},
	} {
		tx, err := pl.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('grey.tenant_id', $1, true)`, q.tenant); err != nil {
			t.Fatal(err)
		}
		var plan []string
		for k := 0; k < 3; k++ { // the last of three (warm)
			plan = plan[:0]
			rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) `+q.sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var line string
				_ = rows.Scan(&line)
				plan = append(plan, line)
			}
			rows.Close()
		}
		_ = tx.Rollback(ctx)
		if len(plan) > 14 {
			plan = append(plan[:6], append([]string{"  ..."}, plan[len(plan)-6:]...)...)
		}
		t.Logf("plan of %s:\n%s", q.name, strings.Join(plan, "\n"))
	}
	var counts []time.Duration
	for k := 0; k < 100; k++ {
		t0 := time.Now()
		if _, err := s.Count(ctx, "tenant-"+strconv.Itoa(rng.IntN(tenants)), archive.Filter{}); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, time.Since(t0))
	}
	slices.Sort(counts)
	t.Logf("%-40s p50 %8s  max %8s (100 samples)", "count (one tenant, ~50,000 rows)", counts[50].Round(time.Microsecond), counts[99].Round(time.Microsecond))
}

// v7 returns a UUIDv7 whose time is at.
func v7(at time.Time, rng *rand.Rand) string {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[8:], rng.Uint64())
	binary.BigEndian.PutUint64(u[0:8], uint64(at.UnixMilli())<<16|uint64(rng.IntN(1<<12)))
	u[6] = 0x70 | (u[6] & 0x0f)
	u[8] = 0x80 | (u[8] & 0x3f)
	return u.String()
}
