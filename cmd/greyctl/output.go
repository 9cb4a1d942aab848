package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

// json reports whether -o json was asked for.
func (a *app) json() bool { return a.output == "json" }

// writeJSON writes one object as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONLine writes one object as a single line of JSON (lists are
// written as one object per line, so they stream and pipe into jq -c).
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// printTask writes one task: indented JSON, or one "field: value" per line.
func (a *app) printTask(t *task.Task) error {
	if a.json() {
		return writeJSON(a.stdout, t)
	}
	tw := newTabWriter(a.stdout)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("ID", t.ID)
	row("Tenant", t.TenantID)
	row("Kind", t.Kind)
	row("Type", string(t.Type))
	row("Status", string(t.Status))
	row("Priority", strconv.Itoa(t.Prio()))
	row("Attempt", strconv.Itoa(t.Attempt))
	row("Idempotency key", t.IdempotencyKey)
	row("State key", t.StateKey)
	row("Depends on", strings.Join(t.DependsOn, ", "))
	row("Labels", formatMap(t.Labels()))
	if t.Timeout != 0 {
		row("Timeout", t.Timeout.D().String())
	}
	if t.RunAt != nil {
		row("Run at", formatTime(*t.RunAt))
	}
	if t.Lease != nil {
		row("Lease", fmt.Sprintf("worker %s, attempt %d, until %s", t.Lease.WorkerID, t.Lease.Attempt, formatTime(t.Lease.Deadline)))
	}
	row("Waiting", t.WaitingReason)
	row("Proof", t.ProofID)
	row("Created", formatTime(t.CreatedAt))
	row("Updated", formatTime(t.UpdatedAt))
	if t.StartedAt != nil {
		row("Started", formatTime(*t.StartedAt))
	}
	if t.FinishedAt != nil {
		row("Finished", formatTime(*t.FinishedAt))
	}
	if t.NextAttemptAt != nil {
		row("Next attempt", formatTime(*t.NextAttemptAt))
	}
	if len(t.Payload) > 0 {
		row("Payload", truncate(string(t.Payload), 200))
	}
	if len(t.Result) > 0 {
		row("Result", truncate(string(t.Result), 200))
	}
	if t.Error != nil {
		e := t.Error.Message
		if t.Error.Code != "" {
			e = t.Error.Code + ": " + e
		}
		row("Error", e)
	}
	return tw.Flush()
}

// taskTable writes tasks as table rows, with a header.
type taskTable struct {
	tw     *tabwriter.Writer
	header bool
}

func newTaskTable(w io.Writer) *taskTable { return &taskTable{tw: newTabWriter(w)} }

func (tt *taskTable) add(t *task.Task) {
	if !tt.header {
		fmt.Fprintln(tt.tw, "ID\tKIND\tSTATUS\tPRIO\tATTEMPT\tCREATED\tERROR")
		tt.header = true
	}
	errMsg := ""
	if t.Error != nil {
		errMsg = truncate(t.Error.Message, 60)
	}
	fmt.Fprintf(tt.tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n",
		t.ID, t.Kind, t.Status, t.Prio(), t.Attempt, formatTime(t.CreatedAt), errMsg)
}

func (tt *taskTable) flush() error { return tt.tw.Flush() }

// printCluster writes the cluster view.
func (a *app) printCluster(ci *client.ClusterInfo) error {
	if a.json() {
		return writeJSON(a.stdout, ci)
	}
	tw := newTabWriter(a.stdout)
	leader := ci.LeaderID
	if leader == "" {
		leader = "(none)"
	} else if ci.LeaderAddr != "" {
		leader += " (" + ci.LeaderAddr + ")"
	}
	fmt.Fprintf(tw, "Node:\t%s (%s)\n", ci.NodeID, ci.State)
	fmt.Fprintf(tw, "Leader:\t%s\n", leader)
	fmt.Fprintf(tw, "Term:\t%d\n", ci.Term)
	fmt.Fprintf(tw, "Commit index:\t%d\n", ci.CommitIndex)
	fmt.Fprintf(tw, "Applied index:\t%d\n", ci.AppliedIndex)
	fmt.Fprintf(tw, "Last snapshot:\t%d\n", ci.LastSnapshotIndex)
	fmt.Fprintf(tw, "Quorum size:\t%d\n", ci.QuorumSize)
	var counts []string
	for _, s := range task.Statuses {
		if n, ok := ci.Tasks[s]; ok {
			counts = append(counts, fmt.Sprintf("%s=%d", s, n))
		}
	}
	fmt.Fprintf(tw, "Tasks:\t%s\n", strings.Join(counts, " "))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ci.Members) > 0 {
		fmt.Fprintln(a.stdout)
		return writeTable(a.stdout, ci.Members, nodeHeader, nodeRow)
	}
	return nil
}

// printNodes writes the node list: JSON lines, or a table.
func (a *app) printNodes(nodes []client.NodeInfo) error {
	return printRows(a, nodes, nodeHeader, nodeRow)
}

const nodeHeader = "ID\tROLE\tSUFFRAGE\tSTATE\tRAFT ADDR\tAPI ADDR\tLAST CONTACT\tLABELS"

func nodeRow(n client.NodeInfo) string {
	contact := "-"
	if n.LastContact != nil {
		contact = formatTime(*n.LastContact)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", n.ID, n.Role, dash(n.Suffrage), n.State,
		dash(n.RaftAddr), dash(n.APIAddr), contact, dash(formatMap(n.Labels)))
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format(time.RFC3339)
}

func formatMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
