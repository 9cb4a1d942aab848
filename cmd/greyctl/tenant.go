package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/grey-distributed/grey/task"
	tenants "github.com/grey-distributed/grey/tenant"
)

func newTenantCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Create, inspect, list, update and delete tenants and their quotas",
		Long: `Manage tenants and their quotas (admin routes: where the server has an admin
token, pass it with --token or GREY_TOKEN).

Quota flags (0 = no limit; for --max-payload-bytes and --max-task-timeout,
the server's limit):
  --weight              fair-share weight (default 1)
  --max-running         leased + running tasks; further ready tasks wait
  --max-queued          unfinished tasks; submits beyond it are refused (429)
  --submit-rate         tasks per second, sustained (needs --submit-burst)
  --submit-burst        tasks in a burst (and the largest batch)
  --max-payload-bytes   one task's payload
  --max-storage-bytes   payload + result bytes held
  --allowed-kinds       kinds the tenant may submit, comma-separated (all when empty)
  --max-task-timeout    a task's timeout, e.g. 1m`,
		RunE: groupRun,
	}
	cmd.AddCommand(newTenantCreateCmd(a), newTenantGetCmd(a), newTenantListCmd(a), newTenantUpdateCmd(a), newTenantDeleteCmd(a))
	return cmd
}

// quotaFlags are the quota flags of tenant create and update.
type quotaFlags struct {
	weight          float64
	maxRunning      int
	maxQueued       int
	submitRate      float64
	submitBurst     int
	maxPayloadBytes int64
	maxStorageBytes int64
	allowedKinds    []string
	maxTaskTimeout  time.Duration
}

func (qf *quotaFlags) register(f *pflag.FlagSet) {
	f.Float64Var(&qf.weight, "weight", 0, "fair-share weight (0 = the default, 1)")
	f.IntVar(&qf.maxRunning, "max-running", 0, "most leased + running tasks (0 = no limit)")
	f.IntVar(&qf.maxQueued, "max-queued", 0, "most unfinished tasks (0 = no limit)")
	f.Float64Var(&qf.submitRate, "submit-rate", 0, "sustained submit rate in tasks/s (0 = no limit)")
	f.IntVar(&qf.submitBurst, "submit-burst", 0, "submit burst in tasks (at least 1 with --submit-rate)")
	f.Int64Var(&qf.maxPayloadBytes, "max-payload-bytes", 0, "largest payload in bytes (0 = the server's limit)")
	f.Int64Var(&qf.maxStorageBytes, "max-storage-bytes", 0, "most payload + result bytes held (0 = no limit)")
	f.StringSliceVar(&qf.allowedKinds, "allowed-kinds", nil, "kinds the tenant may submit, comma-separated (empty = all)")
	f.DurationVar(&qf.maxTaskTimeout, "max-task-timeout", 0, "largest task timeout, e.g. 1m (0 = the server's limit)")
}

// apply sets the quota fields whose flags were given on q; with all, every
// field is set (create).
func (qf *quotaFlags) apply(f *pflag.FlagSet, q *tenants.Quota, all bool) error {
	set := func(name string) bool { return all || f.Changed(name) }
	if set("weight") {
		q.Weight = qf.weight
	}
	if set("max-running") {
		q.MaxRunning = qf.maxRunning
	}
	if set("max-queued") {
		q.MaxQueued = qf.maxQueued
	}
	if set("submit-rate") {
		q.SubmitRate = qf.submitRate
	}
	if set("submit-burst") {
		q.SubmitBurst = qf.submitBurst
	}
	if set("max-payload-bytes") {
		q.MaxPayloadBytes = qf.maxPayloadBytes
	}
	if set("max-storage-bytes") {
		q.MaxStorageBytes = qf.maxStorageBytes
	}
	if set("allowed-kinds") {
		var kinds []string
		for _, k := range qf.allowedKinds {
			if k = strings.TrimSpace(k); k != "" {
				kinds = append(kinds, k)
			}
		}
		q.AllowedKinds = kinds
	}
	if set("max-task-timeout") {
		if qf.maxTaskTimeout < 0 {
			return usageErrorf("--max-task-timeout must not be negative")
		}
		q.MaxTaskTimeout = task.Duration(qf.maxTaskTimeout)
	}
	return nil
}

func newTenantCreateCmd(a *app) *cobra.Command {
	var qf quotaFlags
	cmd := &cobra.Command{
		Use:   "create ID [quota flags]",
		Short: "Create a tenant",
		Long:  "Create a tenant with the given quota (flags left out mean no limit) and print it.",
		Example: `  greyctl tenant create acme --weight 2 --max-queued 10000 --submit-rate 100 --submit-burst 1000
  greyctl tenant create sandbox --allowed-kinds noop,echo --max-payload-bytes 65536 --max-task-timeout 1m`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q tenants.Quota
			if err := qf.apply(cmd.Flags(), &q, true); err != nil {
				return err
			}
			c, err := a.client("")
			if err != nil {
				return err
			}
			t, err := c.CreateTenant(cmd.Context(), args[0], q)
			if err != nil {
				return failure(err)
			}
			return a.printTenant(t)
		},
	}
	qf.register(cmd.Flags())
	return cmd
}

func newTenantUpdateCmd(a *app) *cobra.Command {
	var qf quotaFlags
	cmd := &cobra.Command{
		Use:   "update ID [quota flags]",
		Short: "Change a tenant's quota",
		Long: `Change the given quota fields of a tenant and print it. The current quota is
read first; fields without a flag keep their values (set one to 0 to lift
its limit, or --allowed-kinds "" to allow every kind).`,
		Example: `  greyctl tenant update acme --max-queued 50000
  greyctl tenant update acme --submit-rate 0 --submit-burst 0`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := false
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if cmd.LocalFlags().Lookup(f.Name) != nil {
					changed = true
				}
			})
			if !changed {
				return usageErrorf("tenant update: give at least one quota flag (see --help)")
			}
			c, err := a.client("")
			if err != nil {
				return err
			}
			cur, err := c.GetTenant(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			q := cur.Quota
			if err := qf.apply(cmd.Flags(), &q, false); err != nil {
				return err
			}
			t, err := c.UpdateTenant(cmd.Context(), args[0], q)
			if err != nil {
				return failure(err)
			}
			return a.printTenant(t)
		},
	}
	qf.register(cmd.Flags())
	return cmd
}

func newTenantGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a tenant and its quota",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client("")
			if err != nil {
				return err
			}
			t, err := c.GetTenant(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			return a.printTenant(t)
		},
	}
}

func newTenantDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a tenant (it must have no unfinished tasks)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client("")
			if err != nil {
				return err
			}
			t, err := c.DeleteTenant(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, t)
			}
			_, err = fmt.Fprintf(a.stdout, "deleted tenant %s\n", t.ID)
			return err
		},
	}
}

func newTenantListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the tenants",
		Long:  "List the tenants, sorted by id. With -o json, each tenant is printed as one line of JSON.",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client("")
			if err != nil {
				return err
			}
			ts, err := c.ListTenants(cmd.Context())
			if err != nil {
				return failure(err)
			}
			return printRows(a, ts, "ID\tWEIGHT\tMAX RUNNING\tMAX QUEUED\tSUBMIT RATE\tBURST\tMAX PAYLOAD\tMAX STORAGE\tKINDS\tMAX TIMEOUT\tCREATED", func(t *tenants.Tenant) string {
				q := t.Quota
				id := t.ID
				if t.AutoCreated {
					id += " (auto)"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", id, fmtFloat(q.Weight),
					limit(int64(q.MaxRunning)), limit(int64(q.MaxQueued)), rateLimit(q.SubmitRate), limit(int64(q.SubmitBurst)),
					limit(q.MaxPayloadBytes), limit(q.MaxStorageBytes), kindsOf(q.AllowedKinds), durLimit(q.MaxTaskTimeout),
					formatTime(t.CreatedAt))
			})
		},
	}
}

// printTenant writes one tenant: indented JSON, or one "field: value" per line.
func (a *app) printTenant(t *tenants.Tenant) error {
	if a.json() {
		return writeJSON(a.stdout, t)
	}
	q := t.Quota
	tw := newTabWriter(a.stdout)
	fmt.Fprintf(tw, "ID:\t%s\n", t.ID)
	if t.AutoCreated {
		fmt.Fprintf(tw, "Auto-created:\tyes\n")
	}
	fmt.Fprintf(tw, "Weight:\t%s\n", fmtFloat(q.Weight))
	fmt.Fprintf(tw, "Max running:\t%s\n", limit(int64(q.MaxRunning)))
	fmt.Fprintf(tw, "Max queued:\t%s\n", limit(int64(q.MaxQueued)))
	fmt.Fprintf(tw, "Submit rate:\t%s\n", rateLimit(q.SubmitRate))
	fmt.Fprintf(tw, "Submit burst:\t%s\n", limit(int64(q.SubmitBurst)))
	fmt.Fprintf(tw, "Max payload bytes:\t%s\n", limit(q.MaxPayloadBytes))
	fmt.Fprintf(tw, "Max storage bytes:\t%s\n", limit(q.MaxStorageBytes))
	fmt.Fprintf(tw, "Allowed kinds:\t%s\n", kindsOf(q.AllowedKinds))
	fmt.Fprintf(tw, "Max task timeout:\t%s\n", durLimit(q.MaxTaskTimeout))
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(t.CreatedAt))
	fmt.Fprintf(tw, "Updated:\t%s\n", formatTime(t.UpdatedAt))
	return tw.Flush()
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// limit renders a count or size limit, "-" for none.
func limit(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func rateLimit(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmtFloat(r) + "/s"
}

func durLimit(d task.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.D().String()
}

func kindsOf(kinds []string) string {
	if len(kinds) == 0 {
		return "(all)"
	}
	return strings.Join(kinds, ",")
}
