package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/engine"
)

// backupTimeout bounds writing one backup file.
const backupTimeout = 10 * time.Minute

// Backup file names: grey-snapshot-<UTC time>-<index>.snap (api.SnapshotFileName).
const (
	backupPrefix = "grey-snapshot-"
	backupSuffix = ".snap"
)

// checkBackupURL fails when raft.backup.url names a bucket scheme this
// build has no driver for (cmd/greyd registers file, s3, gs and azblob).
func checkBackupURL(reg *blobstore.Registry, raw string) error {
	if raw == "" {
		return nil
	}
	if err := reg.Check(raw); err != nil {
		return fmt.Errorf("raft.backup.url: %w", err)
	}
	return nil
}

// probeBackupBucket opens raft.backup.url once at start-up, so that a
// bucket that does not exist or refuses the credentials stops greyd with
// its name instead of failing every backup later.
func probeBackupBucket(reg *blobstore.Registry, cfg *config.Config) error {
	if cfg.Raft.Backup.URL == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := reg.Open(ctx, cfg.Raft.Backup.URL, blobstore.Options{})
	if err != nil {
		return fmt.Errorf("raft.backup.url: %w", err)
	}
	return b.Close()
}

// startBackups runs the periodic backup loop when raft.backup.url is set;
// the returned function stops it and waits.
func (s *Server) startBackups() (stop func()) {
	cfg := s.cfg.Raft.Backup
	if cfg.URL == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runBackups(ctx, s.eng, cfg, s.blobs, s.blobOptions("backups"), s.logger.With("component", "backup"))
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// runBackups writes a snapshot file to the bucket every interval while eng
// leads, keeping the newest cfg.Retain files, until ctx ends. The bucket
// is opened through reg with bopts (its cost tags and metrics).
func runBackups(ctx context.Context, eng *engine.Engine, cfg config.BackupConfig, reg *blobstore.Registry, bopts blobstore.Options, logger *slog.Logger) {
	interval := cfg.Interval.Std()
	if interval <= 0 {
		interval = time.Hour
	}
	var bucket *blobstore.Bucket
	defer func() {
		if bucket != nil {
			_ = bucket.Close()
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !eng.IsLeader() {
			continue
		}
		if bucket == nil {
			b, err := reg.Open(ctx, cfg.URL, bopts)
			if err != nil {
				logger.Error("backup: open bucket", "url", cfg.URL, "err", err)
				continue
			}
			bucket = b
		}
		start := time.Now()
		// A backup that started finishes (within backupTimeout) even when
		// the node shuts down: on a cloud bucket a cancelled upload may
		// still land, and would then escape the pruning below.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backupTimeout)
		key, size, err := backupOnce(bctx, eng, bucket)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("backup failed", "url", cfg.URL, "err", err)
			}
			continue
		}
		logger.Info("backup written", "key", key, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
		// Prune even when shutting down: a backup written is followed by
		// its pruning.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		deleted, err := pruneBackups(pctx, bucket, cfg.Retain)
		cancel()
		if err != nil {
			logger.Warn("backup: prune old files", "err", err)
		}
		for _, k := range deleted {
			logger.Debug("backup deleted", "key", k)
		}
	}
}

// backupOnce writes one snapshot file to the bucket and returns its key.
func backupOnce(ctx context.Context, eng *engine.Engine, bucket *blobstore.Bucket) (string, int64, error) {
	sf, err := eng.OpenSnapshot()
	if err != nil {
		return "", 0, err
	}
	defer sf.Close()
	key := api.SnapshotFileName(sf.Header.CreatedAt, sf.Header.Index)
	// The snapshot writes itself; the bucket reads: a pipe joins them, and
	// a failed write cancels the upload (no partial object is left).
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := sf.WriteTo(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	n, err := bucket.Upload(ctx, key, pr, &blobstore.WriteOptions{ContentType: "application/octet-stream"})
	pr.CloseWithError(errors.New("upload ended"))
	if werr := <-done; err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return "", n, fmt.Errorf("write %s: %w", key, err)
	}
	return key, n, nil
}

// pruneBackups deletes the oldest backup files beyond retain (names sort by
// time) and returns their keys.
func pruneBackups(ctx context.Context, bucket *blobstore.Bucket, retain int) ([]string, error) {
	keys, err := listBackups(ctx, bucket)
	if err != nil {
		return nil, err
	}
	if retain < 1 {
		retain = 1
	}
	var deleted []string
	var errs []error
	for len(keys) > retain {
		k := keys[0]
		keys = keys[1:]
		if err := bucket.Delete(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", k, err))
			continue
		}
		deleted = append(deleted, k)
	}
	return deleted, errors.Join(errs...)
}

// listBackups returns the backup files' keys, oldest first (the bucket
// lists in key order, and names sort by time).
func listBackups(ctx context.Context, bucket *blobstore.Bucket) ([]string, error) {
	var keys []string
	err := bucket.Walk(ctx, backupPrefix, func(o blobstore.Object) error {
		if !strings.Contains(o.Key, "/") && strings.HasSuffix(o.Key, backupSuffix) {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	return keys, nil
}
