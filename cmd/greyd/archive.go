package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/server"
)

const archiveUsage = `usage:
  greyd archive migrate [--config FILE] [--integrations FILE]
      apply the archive's pending schema migrations. PostgreSQL: under an
      advisory lock, connected as database.postgres.migrate_url
      (GREY_PG_MIGRATE_URL), or url (GREY_PG_URL) when unset, and grant
      grey_archive_writer to url's user. Cassandra, MongoDB, replicas and
      shards: every member, as the configured user.
  greyd archive status [--config FILE] [--integrations FILE]
      print the archive's schema version and its daily partitions (one
      PostgreSQL), or whether the archive answers with a current schema
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
	rawURL, _ := cfg.ArchiveURL()
	if rawURL == "" {
		fmt.Fprintf(stderr, "greyd archive %s: no archive is configured (set database.postgres.url or GREY_PG_URL, database.cassandra.hosts or GREY_CASSANDRA_HOSTS, database.mongodb.url or GREY_MONGO_URL, or archive.url)\n", cmd)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	pg := cfg.Database.Postgres
	if cfg.Database.Driver() != "postgres" || pg.URL == "" {
		return archiveOther(ctx, cfg, cmd, stdout, stderr)
	}
	owner := string(pg.MigrateURL)
	if owner == "" {
		owner = string(pg.URL)
	}
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

// archiveOther migrates or checks an archive that is not one PostgreSQL
// (Cassandra, MongoDB, PostgreSQL replicas or shards, archive.url): it
// opens it through the drivers of this binary, with migrations on for
// migrate, and pings it; composites migrate every member.
func archiveOther(ctx context.Context, cfg *config.Config, cmd string, stdout, stderr io.Writer) int {
	rawURL, key := cfg.ArchiveURL()
	reg, err := archiveDrivers()
	if err != nil {
		fmt.Fprintf(stderr, "greyd archive %s: %v\n", cmd, err)
		return 1
	}
	oo := server.ArchiveOpenOptions(cfg, nil)
	oo.Migrate = cmd == "migrate"
	st, err := reg.Open(ctx, rawURL, oo, archive.Options{Name: "archive"})
	if err == nil {
		defer st.Close()
		err = st.Ping(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "greyd archive %s: %s: %v\n", cmd, key, err)
		return 1
	}
	if cmd == "migrate" {
		fmt.Fprintf(stdout, "archive %s: schema up to date\n", archive.Redact(rawURL))
	} else {
		fmt.Fprintf(stdout, "archive %s: answers, schema up to date\n", archive.Redact(rawURL))
	}
	return 0
}
