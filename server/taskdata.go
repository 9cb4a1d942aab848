package server

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/taskdata"
)

// openTaskData opens the task data bucket (tasks.data_url, default
// file://<node.data_dir>/taskdata) with the node's cost tags, and the key
// that signs the URLs Grey serves for a bucket that cannot sign.
func (s *Server) openTaskData(ctx context.Context, cfg *config.Config, quota taskdata.QuotaFunc) (*taskdata.Store, error) {
	u := cfg.Tasks.DataURL
	if u == "" {
		abs, err := filepath.Abs(filepath.Join(cfg.Node.DataDir, "taskdata"))
		if err != nil {
			return nil, fmt.Errorf("tasks.data_url: %w", err)
		}
		u = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "create_dir=1&no_tmp_dir=1&dir_file_mode=0700"}).String()
	}
	if s.blobs == nil {
		return nil, fmt.Errorf("tasks.data_url: this greyd links no blob drivers")
	}
	if err := s.blobs.Check(u); err != nil {
		return nil, fmt.Errorf("tasks.data_url: %w", err)
	}
	b, err := s.blobs.Open(ctx, u, s.blobOptions("taskdata"))
	if err != nil {
		return nil, fmt.Errorf("tasks.data_url: %w", err)
	}
	signer, err := taskdata.LoadSigner(filepath.Join(cfg.Node.DataDir, "taskdata.key"))
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	st, err := taskdata.New(b, taskdata.Options{
		MaxObjectBytes: cfg.Tasks.MaxDataBytes,
		InlineMax:      int(cfg.Tasks.MaxPayloadBytes),
		Quota:          quota,
		Signer:         signer,
	})
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return st, nil
}
