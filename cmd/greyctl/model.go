package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/client"
)

// newModelCmd is "greyctl model": the tenant's model registry for the
// inference task kind.
func newModelCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Push, list, inspect and delete models for the inference task kind",
		Long: `Models are TorchScript files (torch.jit.save) and TensorFlow SavedModel
directories, stored per tenant by name and version, with aliases: "latest"
(the version pushed last) and your own, such as "stable". A task of kind
inference names one as "name:version", "name@alias" or "name" (latest):

  greyctl task submit --kind inference --payload '{"model":"mlp@stable","inputs":[…]}'

See docs/inference-models.md.`,
		RunE: groupRun,
	}
	var name, version, framework string
	push := &cobra.Command{
		Use:   "push --name N --version V --framework pytorch|tensorflow FILE|DIR",
		Short: "Push a model version (a TorchScript file, or a SavedModel directory)",
		Long: `Push a model version for the tenant. FILE is a TorchScript file; DIR is
a SavedModel directory, sent as a tar made so that the same directory always
gives the same digest (names sorted, times and owners zeroed). The server
checks the artifact is a model of the framework, and refuses the push
otherwise. Versions are immutable: pushing the same bytes again is harmless,
other bytes under an existing version are refused. The pushed version
becomes "latest".`,
		Example: `  greyctl model push --name mlp --version 1 --framework pytorch mlp.pt
  greyctl model push --name classifier --version 2026-12-04 --framework tensorflow ./saved_model/`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" || version == "" || framework == "" {
				return usageErrorf("--name, --version and --framework are required")
			}
			fw := ai.Framework(framework)
			if !fw.Valid() {
				return usageErrorf("--framework must be pytorch or tensorflow, got %q", framework)
			}
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			f, size, err := openArtifact(args[0])
			if err != nil {
				return failure(err)
			}
			defer func() {
				_ = f.Close()
				if f.Name() != args[0] {
					_ = os.Remove(f.Name())
				}
			}()
			bar := a.newProgress("model push "+name+":"+version, size, true)
			m, err := c.PushModel(cmd.Context(), pushSpec(name, version, fw, size, bar), f)
			bar.Finish()
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, m)
			}
			fmt.Fprintf(a.stdout, "%s:%s %s\n", m.Name, m.Version, m.Digest)
			return nil
		},
	}
	push.Flags().StringVar(&name, "name", "", "model name (lower-case letters, digits, '.', '_', '-')")
	push.Flags().StringVar(&version, "version", "", "version to create")
	push.Flags().StringVar(&framework, "framework", "", "pytorch (a TorchScript file) or tensorflow (a SavedModel directory)")

	var prefix, cursor string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's model versions",
		Args:  noArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			ms, next, err := c.ListModels(ctx, listModelsOptions(prefix, cursor, limit))
			if err != nil {
				return failure(err)
			}
			err = printRows(a, ms, "NAME\tVERSION\tFRAMEWORK\tSIZE\tALIASES\tDIGEST\tCREATED", func(m ai.Model) string {
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s\t%s", m.Name, m.Version, m.Framework, m.Size, strings.Join(m.Aliases, ","), m.Digest, m.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
			})
			if err != nil || a.json() {
				return err
			}
			if next != "" {
				fmt.Fprintf(a.stderr, "more: greyctl model list --cursor %s\n", next)
			}
			return nil
		}),
	}
	list.Flags().StringVar(&prefix, "name", "", "only models whose name starts with this")
	list.Flags().StringVar(&cursor, "cursor", "", "continue a listing (the cursor the page before printed)")
	list.Flags().IntVar(&limit, "limit", 0, "versions per page (server default 100, at most 1000)")

	get := &cobra.Command{
		Use:   "get NAME|NAME:VERSION|NAME@ALIAS",
		Short: "Describe a model (its versions and aliases) or one version",
		Args:  exactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if !strings.ContainsAny(args[0], ":@") {
				info, err := c.GetModel(ctx, args[0])
				if err != nil {
					return failure(err)
				}
				if a.json() {
					return writeJSON(a.stdout, info)
				}
				tw := newTabWriter(a.stdout)
				fmt.Fprintf(tw, "NAME\tVERSION\tFRAMEWORK\tSIZE\tALIASES\tDIGEST\tCREATED\n")
				for _, m := range info.Versions {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.Name, m.Version, m.Framework, m.Size, strings.Join(m.Aliases, ","), m.Digest, m.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
				}
				return tw.Flush()
			}
			m, err := c.GetModelVersion(ctx, args[0])
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, m)
			}
			tw := newTabWriter(a.stdout)
			fmt.Fprintf(tw, "NAME\tVERSION\tFRAMEWORK\tSIZE\tALIASES\tDIGEST\tCREATED\n")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.Name, m.Version, m.Framework, m.Size, strings.Join(m.Aliases, ","), m.Digest, m.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
			return tw.Flush()
		}),
	}
	del := &cobra.Command{
		Use:   "delete NAME:VERSION",
		Short: "Delete a model version",
		Long: `Delete a model version. It is refused while an alias you set (such as
"stable") names the version: move or delete the alias first. If "latest"
names it, "latest" moves to the version pushed most recently before it.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, v, ok := strings.Cut(args[0], ":")
			if !ok {
				return usageErrorf("delete takes NAME:VERSION, got %q", args[0])
			}
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			if err := c.DeleteModel(cmd.Context(), n, v); err != nil {
				return failure(err)
			}
			if !a.json() {
				fmt.Fprintf(a.stdout, "deleted %s:%s\n", n, v)
			}
			return nil
		},
	}
	alias := &cobra.Command{
		Use:   "alias",
		Short: "Set or delete a model alias (such as stable)",
		RunE:  groupRun,
	}
	aliasSet := &cobra.Command{
		Use:     "set NAME@ALIAS VERSION",
		Short:   "Point an alias at a version (creating or moving it)",
		Example: `  greyctl model alias set mlp@stable 3`,
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, al, ok := strings.Cut(args[0], "@")
			if !ok {
				return usageErrorf("alias set takes NAME@ALIAS VERSION, got %q", args[0])
			}
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			m, err := c.SetAlias(cmd.Context(), n, al, args[1])
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, m)
			}
			fmt.Fprintf(a.stdout, "%s@%s -> %s:%s %s\n", n, al, m.Name, m.Version, m.Digest)
			return nil
		},
	}
	aliasDelete := &cobra.Command{
		Use:   "delete NAME@ALIAS",
		Short: "Delete an alias (latest cannot be deleted)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, al, ok := strings.Cut(args[0], "@")
			if !ok {
				return usageErrorf("alias delete takes NAME@ALIAS, got %q", args[0])
			}
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			if err := c.DeleteAlias(cmd.Context(), n, al); err != nil {
				return failure(err)
			}
			if !a.json() {
				fmt.Fprintf(a.stdout, "deleted %s@%s\n", n, al)
			}
			return nil
		},
	}
	alias.AddCommand(aliasSet, aliasDelete)
	cmd.AddCommand(push, list, get, del, alias)
	return cmd
}

// openArtifact opens the artifact to push: path itself when it is a file,
// else a temporary deterministic tar of the directory (the caller removes
// it when its name is not path).
func openArtifact(path string) (*os.File, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if !fi.IsDir() {
		f, err := os.Open(path)
		return f, fi.Size(), err
	}
	f, err := os.CreateTemp("", "greyctl-model-*.tar")
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) (*os.File, int64, error) {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, 0, err
	}
	if err := modelstore.TarDir(path, f); err != nil {
		return fail(err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, size, nil
}

// pushSpec is the client's push spec, reporting progress to bar.
func pushSpec(name, version string, fw ai.Framework, size int64, bar *progress) client.PushModelSpec {
	spec := client.PushModelSpec{Name: name, Version: version, Framework: fw, Size: size}
	if bar != nil {
		spec.Progress = func(sent, _ int64) { bar.Set(sent) }
	}
	return spec
}

func listModelsOptions(name, cursor string, limit int) client.ListModelsOptions {
	return client.ListModelsOptions{Name: name, Cursor: cursor, Limit: limit}
}
