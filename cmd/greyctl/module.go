package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/client"
)

// newModuleCmd is "greyctl module": the tenant's WebAssembly modules for
// the wasm task kind (issue #4).
func newModuleCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "module",
		Short: "Upload, list and inspect WebAssembly modules for the wasm task kind",
		Long: `Modules are WASI command modules (for example built with
GOOS=wasip1 GOARCH=wasm go build) stored per tenant and named by the SHA-256
of their bytes. A task of kind wasm names one:

  greyctl task submit --kind wasm --payload '{"module":"sha256:…","input":"some text"}'

See docs/EXECUTORS.md.`,
		RunE: groupRun,
	}
	push := &cobra.Command{
		Use:   "push FILE",
		Short: "Upload a .wasm module (- for stdin) and print its digest",
		Long: `Upload a .wasm module for the tenant and print its digest
("sha256:<hex>"), which tasks of kind wasm name in their payload. The server
compiles the module first and refuses one it cannot run. Pushing the same
bytes again is harmless and prints the same digest.`,
		Example: `  GOOS=wasip1 GOARCH=wasm go build -o wordcount.wasm ./examples/wasm/wordcount
  greyctl module push wordcount.wasm`,
		Args: exactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(a.stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return failure(err)
			}
			bar := a.newProgress("module push", int64(len(data)), true)
			m, err := c.PushModuleProgress(ctx, data, func(sent, _ int64) { bar.Set(sent) })
			bar.Finish()
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, m)
			}
			fmt.Fprintln(a.stdout, m.Digest)
			return nil
		}),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's modules",
		Args:  noArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			ms, err := c.ListModules(ctx)
			if err != nil {
				return failure(err)
			}
			return printRows(a, ms, "DIGEST\tSIZE\tCREATED", func(m client.Module) string {
				return fmt.Sprintf("%s\t%d\t%s", m.Digest, m.Size, m.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
			})
		}),
	}
	get := &cobra.Command{
		Use:   "get DIGEST",
		Short: "Describe one of the tenant's modules",
		Args:  exactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			m, err := c.GetModule(ctx, args[0])
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, m)
			}
			tw := newTabWriter(a.stdout)
			fmt.Fprintf(tw, "DIGEST\tSIZE\tTENANT\tCREATED\n%s\t%d\t%s\t%s\n", m.Digest, m.Size, m.TenantID, m.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
			return tw.Flush()
		}),
	}
	cmd.AddCommand(push, list, get)
	return cmd
}
