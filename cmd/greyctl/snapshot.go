package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/client"
)

func newSnapshotCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save the cluster's state to a file, or restore it from one (admin)",
		Long: `Save the cluster's state to a snapshot file, or replace it with one.

Both are admin commands: where the server has an admin token, pass it with
--token (or GREY_TOKEN). See docs/OPERATIONS.md for backups and for
rebuilding a whole cluster from a snapshot.`,
		RunE: groupRun,
	}
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Take a snapshot now and write it to FILE (- for stdout)",
		Long: `Take a Raft snapshot on the leader and write it to FILE ("-" writes to
stdout). The file is checked (length and checksum) as it arrives and only
then renamed into place, so FILE is never left half-written.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			path := args[0]
			var info *client.SnapshotInfo
			msg := a.stdout
			// The size is not known before the download ends: the bar
			// counts bytes and their rate.
			bar := a.newProgress("snapshot save", 0, true)
			defer bar.Finish() // ends the line on errors too
			if path == "-" {
				msg = a.stderr
				if info, err = c.SaveSnapshot(cmd.Context(), bar.Writer(a.stdout)); err != nil {
					return failure(err)
				}
			} else if info, err = saveSnapshotFile(cmd, c, path, bar); err != nil {
				return failure(err)
			}
			bar.Finish()
			if a.json() {
				return writeJSON(msg, info)
			}
			fmt.Fprintf(msg, "saved snapshot of cluster %s at index %d (term %d, %d bytes of state) to %s\n",
				info.ClusterID, info.Index, info.Term, info.Size, path)
			return nil
		},
	}
	var force bool
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster's tasks, tenants and usage with a snapshot file (- for stdin)",
		Long: `Upload a snapshot file (written by "greyctl snapshot save" or a backup) and
replace the cluster's tasks, tenants and usage with its contents, on every
server. The server checks the whole file first; a damaged file changes
nothing. A snapshot of another cluster is refused unless --force, or the
cluster holds no tasks and no tenants yet (a freshly bootstrapped cluster).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			var r io.Reader = a.stdin
			var size int64
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return failure(err)
				}
				defer f.Close()
				r = f
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					size = fi.Size()
				}
			}
			bar := a.newProgress("snapshot restore: uploaded", size, true)
			info, err := c.RestoreSnapshot(cmd.Context(), bar.Reader(r), force)
			bar.Finish()
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, info)
			}
			forced := ""
			if info.Forced {
				forced = " (forced)"
			}
			fmt.Fprintf(a.stdout, "restored snapshot of cluster %s at index %d%s: %d tasks, %d tenants\n",
				info.ClusterID, info.Index, forced, info.Tasks, info.Tenants)
			return nil
		},
	}
	restore.Flags().BoolVar(&force, "force", false, "restore a snapshot taken from another cluster")
	cmd.AddCommand(save, restore)
	return cmd
}

// saveSnapshotFile downloads a snapshot into a temporary file next to path
// and renames it into place once complete.
func saveSnapshotFile(cmd *cobra.Command, c *client.Client, path string, bar *progress) (*client.SnapshotInfo, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	info, err := c.SaveSnapshot(cmd.Context(), bar.Writer(f))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return nil, err
	}
	return info, nil
}
