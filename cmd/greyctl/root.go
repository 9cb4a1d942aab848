package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/cmd/internal/archivedrivers"
	"github.com/grey-distributed/grey/greyerr"
)

// userAgent is sent with every request.
const userAgent = "greyctl/1"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitError ends greyctl with a given exit code; err (if any) is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns an error that exits with exitUsage.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failure returns an error that exits with exitFailure.
func failure(err error) error { return &exitError{code: exitFailure, err: err} }

// app holds the global flags and the process's streams.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	server string
	tenant string
	token  string
	apiKey string
	output string
	// tokenFlag and apiKeyFlag: the credential came from a flag (which
	// beats the environment).
	tokenFlag, apiKeyFlag bool
	tls                   tlsFlags

	// httpClient, when set, is shared by the clients greyctl creates.
	httpClient *http.Client
}

// run executes greyctl with args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "greyctl:", errText(ee.err))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "greyctl:", errText(err))
	if strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailure
}

// errText renders err for stderr: a server error also names its reason
// (which quota refused a submit) and when to retry.
func errText(err error) string {
	s := err.Error()
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		if ge.Reason != "" {
			s += " [reason: " + ge.Reason + "]"
		}
		if ge.RetryAfter > 0 {
			s += fmt.Sprintf(" [retry after %s]", ge.RetryAfter)
		}
	}
	return s
}

// newRootCmd builds the command tree.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "greyctl",
		Short: "Command-line client of Grey, the multi-tenant distributed task platform",
		Long: `greyctl talks to a Grey cluster over its HTTP API.

The global flags fall back to environment variables:
  --server  GREY_SERVER  (default http://127.0.0.1:8080; a comma-separated list fails over)
  --tenant  GREY_TENANT  (default: none sent; the server then uses the
                         principal's only tenant, or "default" without auth)
  --token   GREY_TOKEN   (bearer token, when auth is on; the admin token for
                         the tenant and cost commands where the server has one)
  --api-key GREY_API_KEY (a Grey API key, grey_<id>_<secret>)
  --ca-file GREY_CA_FILE (the CA of https servers, e.g. greyd certs init's ca.crt)
  --cert-file, --key-file  GREY_CERT_FILE, GREY_KEY_FILE (a client certificate)
Without --token or --api-key, the token stored by greyctl login is used
(and refreshed when it expires).`,
		RunE:          groupRun,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.applyEnv(cmd)
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.server, "server", "http://127.0.0.1:8080", "server base URL(s), comma-separated (env GREY_SERVER)")
	// No default: without --tenant no X-Grey-Tenant is sent and the server
	// picks the tenant (the principal's only one; "default" in mode none),
	// so a user of one tenant need not name it.
	f.StringVar(&a.tenant, "tenant", "", `tenant to act for (env GREY_TENANT; default: the principal's only tenant, or "default" without authentication)`)
	f.StringVar(&a.token, "token", "", "bearer token (env GREY_TOKEN)")
	f.StringVar(&a.apiKey, "api-key", "", "Grey API key, grey_<id>_<secret> (env GREY_API_KEY)")
	a.tls.register(f)
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json (cost report: also csv)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(newTaskCmd(a), newTenantCmd(a), newCostCmd(a), newClusterCmd(a), newSnapshotCmd(a), newModuleCmd(a), newModelCmd(a), newProofCmd(a), newBenchCmd(a)) // module: issue #4
	root.AddCommand(newAPIKeyCmd(a), newLoginCmd(a), newLogoutCmd(a))
	root.AddCommand(newEventsCmd(a))
	root.AddCommand(newArchiveCmd(a, archivedrivers.Registry))
	return root
}

// applyEnv fills the global flags that were not given from the environment
// and checks them.
func (a *app) applyEnv(cmd *cobra.Command) error {
	for flag, env := range map[string]*struct {
		name string
		dst  *string
	}{
		"server":  {"GREY_SERVER", &a.server},
		"tenant":  {"GREY_TENANT", &a.tenant},
		"token":   {"GREY_TOKEN", &a.token},
		"api-key": {"GREY_API_KEY", &a.apiKey},
	} {
		if cmd.Flags().Changed(flag) {
			continue
		}
		if v := a.getenv(env.name); v != "" {
			*env.dst = v
		}
	}
	a.tokenFlag, a.apiKeyFlag = cmd.Flags().Changed("token"), cmd.Flags().Changed("api-key")
	formats := outputFormats(cmd)
	if !slices.Contains(formats, a.output) {
		return usageErrorf("--output must be %s, got %q", strings.Join(formats, " or "), a.output)
	}
	return nil
}

// outputAnnotation lists, in a command's Annotations, the --output formats
// it supports when they differ from table and json.
const outputAnnotation = "greyctl/output"

// outputFormats returns the --output formats cmd supports.
func outputFormats(cmd *cobra.Command) []string {
	if f, ok := cmd.Annotations[outputAnnotation]; ok {
		return strings.Split(f, ",")
	}
	return []string{"table", "json"}
}

// client returns a client for the global flags, acting for tenant.
func (a *app) client(tenant string) (*client.Client, error) {
	opts := []client.Option{client.WithTenant(tenant), client.WithUserAgent(userAgent)}
	cred, err := a.credential()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		opts = append(opts, cred)
	}
	if o, err := a.tls.option(a.getenv); err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	} else if o != nil {
		opts = append(opts, o)
	}
	if a.httpClient != nil {
		opts = append(opts, client.WithHTTPClient(a.httpClient))
	}
	c, err := client.New(a.server, opts...)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return c, nil
}

// credential chooses the client's credential: --api-key or --token (a flag
// beats the environment; two of the same standing are refused), else the
// token stored by greyctl login, else none.
func (a *app) credential() (client.Option, error) {
	token, apiKey := a.token, a.apiKey
	if token != "" && apiKey != "" {
		switch {
		case a.tokenFlag && !a.apiKeyFlag:
			apiKey = ""
		case a.apiKeyFlag && !a.tokenFlag:
			token = ""
		default:
			return nil, usageErrorf("give --token (GREY_TOKEN) or --api-key (GREY_API_KEY), not both")
		}
	}
	switch {
	case apiKey != "":
		return client.WithAPIKey(apiKey), nil
	case token != "":
		return client.WithToken(token), nil
	}
	path, err := a.loginPath()
	if err != nil {
		return nil, nil // no config directory: no stored login either
	}
	l, err := loadLogin(path)
	if err != nil {
		return nil, failure(err)
	}
	if l == nil {
		return nil, nil
	}
	ctx := context.Background()
	if a.httpClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, a.httpClient)
	}
	return client.WithTokenSource(newLoginTokenSource(ctx, path, l)), nil
}

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

// groupRun is the RunE of a command that only groups subcommands: it shows
// the help, or a usage error for an unknown subcommand.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}

// noArgs is cobra.NoArgs with a usage exit code.
func noArgs(cmd *cobra.Command, args []string) error { return exactArgs(0)(cmd, args) }
