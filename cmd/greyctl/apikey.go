package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/client"
)

func newAPIKeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list and revoke API keys of service accounts",
		Long: `Manage API keys: bearer tokens grey_<id>_<secret> for services and workers.

The secret is printed once, by create; the server keeps only its hash. An
admin manages every key; an operator of a tenant manages that tenant's keys
and may create operator, viewer and worker keys for it. Only an admin creates
admin keys.`,
		RunE: groupRun,
	}
	cmd.AddCommand(newAPIKeyCreateCmd(a), newAPIKeyListCmd(a), newAPIKeyRevokeCmd(a))
	return cmd
}

func newAPIKeyCreateCmd(a *app) *cobra.Command {
	var (
		role, expires, name, description string
		kinds                            []string
	)
	cmd := &cobra.Command{
		Use:   "create --role ROLE [--tenant T] [--expires 90d] [--kinds a,b] [--name N]",
		Short: "Create an API key and print its token (shown only once)",
		Long: `Create an API key for --tenant (default: the global --tenant) with --role
admin, operator, viewer or worker, and print its token. The token cannot be
shown again: store it now. Admin keys act for every tenant (--tenant is
ignored). --expires takes days (90d), weeks (12w) or a duration (36h); "never"
creates a key that does not expire.`,
		Example: `  greyctl apikey create --tenant acme --role worker --kinds resize,thumb --expires 90d --name resizer
  greyctl apikey create --role admin --expires 30d --name ci`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" {
				return usageErrorf("apikey create: --role is required (admin, operator, viewer or worker)")
			}
			req := client.NewAPIKey{Tenant: a.tenant, Role: role, Name: name, Description: description}
			if role == "admin" {
				req.Tenant = "*"
			}
			for _, k := range kinds {
				if k = strings.TrimSpace(k); k != "" {
					req.Kinds = append(req.Kinds, k)
				}
			}
			if expires != "never" {
				if _, err := apikey.ParseTTL(expires); err != nil {
					return usageErrorf("--expires: %v", err)
				}
				req.ExpiresIn = expires
			}
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			out, err := c.CreateAPIKey(cmd.Context(), req)
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, out)
			}
			if err := a.printAPIKey(out.Key); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "\nThe token below is shown only once; store it now:\n")
			_, err = fmt.Fprintln(a.stdout, out.Token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "role of the key: admin, operator, viewer or worker")
	f.StringVar(&expires, "expires", "90d", "lifetime: 90d, 12w, 36h, or never")
	f.StringSliceVar(&kinds, "kinds", nil, "task kinds a worker key may lease, comma-separated (default all)")
	f.StringVar(&name, "name", "", "a short name for the key")
	f.StringVar(&description, "description", "", "what the key is for")
	return cmd
}

func newAPIKeyListCmd(a *app) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Long: `List the API keys of the tenant (the global --tenant), or with --all every
key (admin). Without --tenant, a principal of one tenant lists that tenant's
keys and an admin every key. With -o json, each key is printed as one line
of JSON.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			tenant := a.tenant
			if all {
				tenant = ""
			}
			keys, err := c.ListAPIKeys(cmd.Context(), tenant)
			if err != nil {
				return failure(err)
			}
			return printRows(a, keys, "ID\tTENANT\tROLE\tKINDS\tNAME\tSTATUS\tCREATED\tEXPIRES\tLAST USED", func(k *client.APIKey) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", k.ID, k.Tenant, k.Role, kindsOf(k.Kinds), dash(k.Name),
					keyStatus(k), formatTime(k.CreatedAt), timeOrNever(k), dash(formatTime(k.LastUsedAt)))
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list the keys of every tenant (admin)")
	return cmd
}

func newAPIKeyRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key; it stops working at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			k, err := c.RevokeAPIKey(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, k)
			}
			_, err = fmt.Fprintf(a.stdout, "revoked api key %s\n", k.ID)
			return err
		},
	}
}

// printAPIKey writes one key, one "field: value" per line.
func (a *app) printAPIKey(k *client.APIKey) error {
	tw := newTabWriter(a.stdout)
	fmt.Fprintf(tw, "ID:\t%s\n", k.ID)
	fmt.Fprintf(tw, "Tenant:\t%s\n", k.Tenant)
	fmt.Fprintf(tw, "Role:\t%s\n", k.Role)
	if len(k.Kinds) > 0 {
		fmt.Fprintf(tw, "Kinds:\t%s\n", strings.Join(k.Kinds, ","))
	}
	if k.Name != "" {
		fmt.Fprintf(tw, "Name:\t%s\n", k.Name)
	}
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(k.CreatedAt))
	fmt.Fprintf(tw, "Expires:\t%s\n", timeOrNever(k))
	return tw.Flush()
}

func keyStatus(k *client.APIKey) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(time.Now()):
		return "expired"
	}
	return "active"
}

func timeOrNever(k *client.APIKey) string {
	if k.ExpiresAt.IsZero() {
		return "never"
	}
	return formatTime(k.ExpiresAt)
}
