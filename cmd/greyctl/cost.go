package main

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
	tenants "github.com/grey-distributed/grey/tenant"
)

func newCostCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Report usage and cost per tenant",
		RunE:  groupRun,
	}
	cmd.AddCommand(newCostReportCmd(a))
	return cmd
}

// costColumns are the columns of the table and CSV cost reports.
var costColumns = []string{
	"tenant", "tasks_submitted", "completed", "failed", "cancelled", "cpu_seconds", "gpu_seconds", "bytes_in", "bytes_out",
	"gb_months", "cpu_usd", "gpu_usd", "storage_usd", "transfer_usd", "tasks_usd", "total_usd",
}

func newCostReportCmd(a *app) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Usage and cost per tenant over a period",
		Long: `Report each tenant's usage and cost over a period, priced with the server's
price table, with a total row (an admin route: pass the admin token with
--token or GREY_TOKEN where the server has one).

--from and --to take an RFC 3339 time or a duration relative to now (-24h,
-30m); either may be left out for an open end. Usage is kept per hour, so
--from is rounded down to its hour. The global --tenant flag, when given on
the command line, limits the report to that tenant (GREY_TENANT does not).

Columns of -o table and -o csv: ` + strings.Join(costColumns, ", ") + `.
gb_months is stored bytes over time in GB-months (10^9 bytes for 30 days):
payloads and results held, and the tenant's modules, uploads and stored
results in blob buckets.
-o json prints the server's report.`,
		Example: `  greyctl cost report --from -24h
  greyctl cost report --tenant acme --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z -o csv`,
		Annotations: map[string]string{outputAnnotation: "table,json,csv"},
		Args:        noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var opts client.UsageOptions
			var err error
			if opts.From, err = parseWhen("--from", from, now); err != nil {
				return err
			}
			if opts.To, err = parseWhen("--to", to, now); err != nil {
				return err
			}
			if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
				return usageErrorf("--from must be before --to")
			}
			if cmd.Flags().Changed("tenant") {
				if !task.ValidTenant(a.tenant) {
					return usageErrorf("--tenant %q is not a valid tenant id", a.tenant)
				}
				opts.Tenant = a.tenant
			}
			c, err := a.client("")
			if err != nil {
				return err
			}
			rep, err := c.Usage(cmd.Context(), opts)
			if err != nil {
				return failure(err)
			}
			switch a.output {
			case "json":
				return writeJSON(a.stdout, rep)
			case "csv":
				return writeCostCSV(a, rep)
			}
			return writeCostTable(a, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start: RFC 3339 time or -DURATION from now, e.g. -24h (default: open)")
	f.StringVar(&to, "to", "", "end (exclusive): RFC 3339 time or -DURATION from now (default: open)")
	return cmd
}

// parseWhen reads --from/--to: "" (open), "now", an RFC 3339 time, or a
// signed duration relative to now.
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return time.Time{}, nil
	case v == "now":
		return now, nil
	case strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+"):
		d, err := time.ParseDuration(v)
		if err != nil {
			return time.Time{}, usageErrorf("%s %q: want an RFC 3339 time or a duration such as -24h", flag, v)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usageErrorf("%s %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration such as -24h", flag, v)
	}
	return t, nil
}

// costRow is one line of a table or CSV report.
type costRow struct {
	tenant string
	usage  tenants.Usage
	cost   tenants.Cost
}

// costRows returns the report's rows, the total last (named TOTAL, which no
// tenant id can be: ids are lower case).
func costRows(rep *client.UsageReport) []costRow {
	rows := make([]costRow, 0, len(rep.Tenants)+1)
	total := costRow{tenant: "TOTAL", cost: rep.Total}
	for _, tu := range rep.Tenants {
		rows = append(rows, costRow{tenant: tu.TenantID, usage: tu.Usage, cost: tu.Cost})
		total.usage.Add(tu.Usage)
	}
	return append(rows, total)
}

const gbMonthByteSeconds = 1e9 * 30 * 24 * 3600

// cells renders a row; prec is the decimals of seconds, GB-months and USD
// (-1: as many as needed).
func (r costRow) cells(prec [3]int) []string {
	f := func(v float64, p int) string { return strconv.FormatFloat(v, 'f', p, 64) }
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	u, c := r.usage, r.cost
	return []string{
		r.tenant, i(u.TasksSubmitted), i(u.TasksCompleted), i(u.TasksFailed), i(u.TasksCancelled),
		f(u.CPUSeconds, prec[0]), f(u.GPUSeconds, prec[0]), i(u.BytesIn), i(u.BytesOut), f(u.ByteSeconds/gbMonthByteSeconds, prec[1]),
		f(c.CPU, prec[2]), f(c.GPU, prec[2]), f(c.Storage, prec[2]), f(c.Transfer, prec[2]), f(c.Tasks, prec[2]), f(c.Total, prec[2]),
	}
}

func writeCostTable(a *app, rep *client.UsageReport) error {
	tw := newTabWriter(a.stdout)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(costColumns, "\t")))
	for _, r := range costRows(rep) {
		fmt.Fprintln(tw, strings.Join(r.cells([3]int{3, 9, 6}), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	period := func(t *time.Time, open string) string {
		if t == nil {
			return open
		}
		return t.Format(time.RFC3339)
	}
	_, err := fmt.Fprintf(a.stdout, "\nPeriod: %s to %s. Prices: $%s/CPU-second, $%s/GPU-second, $%s/GB-month, $%s/GB moved, $%s/task.\n",
		period(rep.From, "the beginning"), period(rep.To, "now"),
		fmtFloat(rep.Prices.CPUSecond), fmtFloat(rep.Prices.GPUSecond), fmtFloat(rep.Prices.GBMonth), fmtFloat(rep.Prices.GBMoved), fmtFloat(rep.Prices.Task))
	return err
}

func writeCostCSV(a *app, rep *client.UsageReport) error {
	w := csv.NewWriter(a.stdout)
	if err := w.Write(costColumns); err != nil {
		return err
	}
	for _, r := range costRows(rep) {
		if err := w.Write(r.cells([3]int{-1, -1, -1})); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}
