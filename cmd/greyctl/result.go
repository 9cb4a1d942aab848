package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// newResultCmd is "task result ID [--url]".
func newResultCmd(a *app) *cobra.Command {
	var signed, asJSON bool
	var expiry time.Duration
	cmd := &cobra.Command{
		Use:   "result ID",
		Short: "Print a completed task's result, or a signed URL of a stored one",
		Long: `Print a completed task's result bytes. A result over the inline limit is stored
in the task data bucket (the task's result_ref): it is fetched and checked
against its recorded SHA-256.

An inference result stored in the binary form (an OIP binary tensor body,
docs/INFERENCE.md) is printed as its stored bytes; --json prints its JSON
form (tensor data as numbers) instead.

With --url, print a signed GET URL of the stored result instead, and its
expiry (-o json: {url, expires_at, size, sha256}); anyone holding it may
download the result until it expires. An inline result has none.`,
		Example: `  greyctl task result 0195a3b4-... > result.json
  greyctl task result 0195a3b4-... --json > response.json   # a binary inference result as JSON
  greyctl task result 0195a3b4-... --url --expiry 1h`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			if signed {
				su, err := c.ResultURL(cmd.Context(), args[0], expiry)
				if err != nil {
					return failure(err)
				}
				if a.json() {
					return writeJSON(a.stdout, su)
				}
				_, err = fmt.Fprintf(a.stdout, "%s\nexpires %s (%d bytes, sha256 %s)\n", su.URL, su.ExpiresAt.Format(time.RFC3339), su.Size, su.SHA256)
				return err
			}
			result := c.Result
			if asJSON {
				result = c.ResultJSON
			}
			b, err := result(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			_, err = a.stdout.Write(append(b, '\n'))
			return err
		},
	}
	cmd.Flags().BoolVar(&signed, "url", false, "print a signed GET URL of the stored result instead of the bytes")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a result stored in the binary form (inference) as JSON")
	cmd.Flags().DurationVar(&expiry, "expiry", 0, "with --url, how long the URL lasts (default 15m, at most 24h)")
	return cmd
}
