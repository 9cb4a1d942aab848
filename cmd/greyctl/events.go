package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/client"
)

func newEventsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the event streams (Kafka, RabbitMQ sources and sinks)",
		RunE:  groupRun,
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each event source and sink with its lag and watermark",
		Long: `Show each event source (a broker Grey takes task submissions from) with its
consumer lag per tenant, the tenants paused by backpressure and its counters,
and each event sink (results and lifecycle events) with its watermark, the
Raft index through which every finished task was published, and its lag
(an admin route: pass the admin token with --token or GREY_TOKEN where the
server has one). -o json prints the server's answer.`,
		Example: `  greyctl events status
  greyctl events status -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client("")
			if err != nil {
				return err
			}
			st, err := c.EventsStatus(cmd.Context())
			if err != nil {
				return failure(err)
			}
			return a.printEvents(st)
		},
	}
	cmd.AddCommand(status)
	return cmd
}

// printEvents writes the events status: two tables, sources then sinks.
func (a *app) printEvents(st *client.EventsStatus) error {
	if a.json() {
		return writeJSON(a.stdout, st)
	}
	if len(st.Sources) == 0 && len(st.Sinks) == 0 {
		_, err := fmt.Fprintln(a.stdout, "No event sources or sinks are configured (events.kafka, events.rabbitmq).")
		return err
	}
	tw := newTabWriter(a.stdout)
	fmt.Fprintln(tw, "SOURCE\tURL\tRUNNING\tLAG\tCONSUMED\tDEAD-LETTERED\tPAUSED\tSTATUS")
	for _, s := range st.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%d\t%d\t%s\t%s\n", s.Name, dash(s.URL), s.Running, sourceLag(s), s.Consumed, s.DeadLettered,
			dash(strings.Join(s.Paused, ",")), health(s.Failures, s.LastError))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SINK\tURL\tWATERMARK\tLAG TASKS\tLAG\tLAST DELIVERY\tSTATUS")
	for _, s := range st.Sinks {
		last := "-"
		if !s.LastDelivery.IsZero() {
			last = s.LastDelivery.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, dash(s.URL), s.Watermark, s.LagTasks,
			(time.Duration(s.LagSeconds * float64(time.Second))).Round(time.Second), last, health(s.Failures, s.LastError))
	}
	return tw.Flush()
}

// sourceLag is the total lag and, when there are any, the tenants behind:
// "12 (acme=10 globex=2)".
func sourceLag(s client.EventSource) string {
	var parts []string
	for t, n := range s.Lag {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", t, n))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprint(s.TotalLag)
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d (%s)", s.TotalLag, strings.Join(parts, " "))
}

func health(failures int, lastErr string) string {
	if failures == 0 {
		return "ok"
	}
	return fmt.Sprintf("failing (%d): %s", failures, lastErr)
}
