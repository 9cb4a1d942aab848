package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/client"
)

// withClient is a command's RunE that first opens the client of the
// global flags for their tenant, then calls run with it.
func (a *app) withClient(run func(ctx context.Context, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client(a.tenant)
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, args)
	}
}

// printRows prints items as one JSON object a line (-o json), else as a
// table: header (tab-separated column names), then row(item) for each.
func printRows[T any](a *app, items []T, header string, row func(T) string) error {
	if a.json() {
		for _, it := range items {
			if err := writeJSONLine(a.stdout, it); err != nil {
				return err
			}
		}
		return nil
	}
	return writeTable(a.stdout, items, header, row)
}

// writeTable writes header (tab-separated column names) and row(item) for
// each item as an aligned table.
func writeTable[T any](w io.Writer, items []T, header string, row func(T) string) error {
	tw := newTabWriter(w)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}
