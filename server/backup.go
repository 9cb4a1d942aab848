package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/engine"
)

// Backup file names: grey-snapshot-<UTC time>-<index>.snap (api.SnapshotFileName).
const (
	backupPrefix = "grey-snapshot-"
	backupSuffix = ".snap"
)

// checkBackupURL fails when raft.backup.url names a bucket scheme this
// build has no driver for.
func checkBackupURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("raft.backup.url: %w", err)
	}
	if !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		return fmt.Errorf("raft.backup.url: bucket scheme %q is not supported by this build (file:// is)", u.Scheme)
	}
	return nil
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
		runBackups(ctx, s.eng, cfg, s.logger.With("component", "backup"))
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// runBackups writes a snapshot file to the bucket every interval while eng
// leads, keeping the newest cfg.Retain files, until ctx ends.
func runBackups(ctx context.Context, eng *engine.Engine, cfg config.BackupConfig, logger *slog.Logger) {
	interval := cfg.Interval.Std()
	if interval <= 0 {
		interval = time.Hour
	}
	var bucket *blob.Bucket
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
			b, err := blob.OpenBucket(ctx, cfg.URL)
			if err != nil {
				logger.Error("backup: open bucket", "url", cfg.URL, "err", err)
				continue
			}
			bucket = b
		}
		start := time.Now()
		key, size, err := backupOnce(ctx, eng, bucket)
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
func backupOnce(ctx context.Context, eng *engine.Engine, bucket *blob.Bucket) (string, int64, error) {
	sf, err := eng.OpenSnapshot()
	if err != nil {
		return "", 0, err
	}
	defer sf.Close()
	key := api.SnapshotFileName(sf.Header.CreatedAt, sf.Header.Index)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := bucket.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", 0, fmt.Errorf("create %s: %w", key, err)
	}
	n, err := sf.WriteTo(w)
	if err != nil {
		cancel() // a cancelled writer's Close discards the object
		_ = w.Close()
		return "", n, fmt.Errorf("write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return "", n, fmt.Errorf("close %s: %w", key, err)
	}
	return key, n, nil
}

// pruneBackups deletes the oldest backup files beyond retain (names sort by
// time) and returns their keys.
func pruneBackups(ctx context.Context, bucket *blob.Bucket, retain int) ([]string, error) {
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

// listBackups returns the backup files' keys, oldest first.
func listBackups(ctx context.Context, bucket *blob.Bucket) ([]string, error) {
	var keys []string
	it := bucket.List(&blob.ListOptions{Prefix: backupPrefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list backups: %w", err)
		}
		if !obj.IsDir && strings.HasSuffix(obj.Key, backupSuffix) {
			keys = append(keys, obj.Key)
		}
	}
	sort.Strings(keys)
	return keys, nil
}
