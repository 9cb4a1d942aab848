package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/config"
)

const archiveUsage = `usage:
  greyd archive migrate [--config FILE] [--integrations FILE]
      apply the archive's pending schema migrations (under an advisory lock),
      connected as database.postgres.migrate_url (GREY_PG_MIGRATE_URL), or
      url (GREY_PG_URL) when unset, and grant grey_archive_writer to url's user
  greyd archive status [--config FILE] [--integrations FILE]
      print the archive's schema version and its daily partitions
`

// runArchive is `greyd archive migrate|status`: the PostgreSQL archive's
// schema (docs/ARCHIVE.md).
func runArchive(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "migrate" && args[0] != "status") {
		fmt.Fprint(stderr, archiveUsage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("greyd archive "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "path of grey.yaml")
	integPath := fs.String("integrations", "", "path of grey-integrations.yaml (the seed's database block)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "greyd archive %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	cfg, err := config.LoadFiles([]string{*cfgPath, *integPath}, os.LookupEnv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "greyd archive %s: %v\n", cmd, err)
		return 2
	}
	pg := cfg.Database.Postgres
	if pg.URL == "" {
		fmt.Fprintf(stderr, "greyd archive %s: no archive database is configured (set database.postgres.url, or GREY_PG_URL)\n", cmd)
		return 2
	}
	owner := string(pg.MigrateURL)
	if owner == "" {
		owner = string(pg.URL)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cmd == "migrate" {
		from, to, err := pgarchive.Migrate(ctx, owner, string(pg.URL))
		if err != nil {
			fmt.Fprintf(stderr, "greyd archive migrate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "archive schema: version %d -> %d\n", from, to)
		return 0
	}
	st, err := pgarchive.ReadStatus(ctx, owner)
	if err != nil {
		fmt.Fprintf(stderr, "greyd archive status: %v\n", err)
		return 1
	}
	state := "up to date"
	switch {
	case st.Version == 0:
		state = "missing: run `greyd archive migrate`"
	case st.Version < st.Latest:
		state = "older than this binary: run `greyd archive migrate`"
	case st.Version > st.Latest:
		state = "newer than this binary"
	}
	fmt.Fprintf(stdout, "archive schema: version %d (this binary: %d, %s)\n", st.Version, st.Latest, state)
	if st.Version == 0 {
		return 0
	}
	var rows int64
	unknown := false
	for _, p := range st.Partitions {
		if p.EstimatedRows < 0 {
			unknown = true
			continue
		}
		rows += p.EstimatedRows
	}
	if len(st.Partitions) == 0 {
		fmt.Fprintln(stdout, "partitions: none (no task archived yet)")
		return 0
	}
	est := fmt.Sprintf("about %d rows", rows)
	if unknown {
		est += " (some partitions not analysed yet)"
	}
	fmt.Fprintf(stdout, "partitions: %d daily, %s .. %s, %s\n", len(st.Partitions),
		st.Partitions[0].Day.Format("2006-01-02"), st.Partitions[len(st.Partitions)-1].Day.Format("2006-01-02"), est)
	return 0
}
