package smoke

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grey-distributed/grey/internal/testenv"
)

func TestPostgres(t *testing.T) {
	// The primary plus the two extra clusters used by sharding/quorum tests.
	for _, name := range []string{"postgres", "postgres2", "postgres3"} {
		t.Run(name, func(t *testing.T) {
			url := testenv.ServiceURL(t, name)
			ctx := ctxFor(t, 30*time.Second)
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatalf("connect %s: %v", url, err)
			}
			defer conn.Close(ctx)

			var version string
			if err := conn.QueryRow(ctx, "show server_version").Scan(&version); err != nil {
				t.Fatal(err)
			}
			if version[:3] != "15." {
				t.Errorf("server_version = %q, want PostgreSQL 15", version)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, "create temp table smoke (id int primary key, v text)"); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "insert into smoke values ($1, $2)", 1, "grey"); err != nil {
				t.Fatal(err)
			}
			var v string
			if err := tx.QueryRow(ctx, "select v from smoke where id = $1", 1).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != "grey" {
				t.Fatalf("got %q", v)
			}
		})
	}
}
