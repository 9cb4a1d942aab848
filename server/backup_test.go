package server

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
)

var backupName = regexp.MustCompile(`^grey-snapshot-\d{8}T\d{6}\.\d{3}Z-\d+\.snap$`)

// TestBackupLoopWritesAndPrunes runs the backup loop against a directory
// and each blob emulator the environment offers (s3, gs, azblob).
func TestBackupLoopWritesAndPrunes(t *testing.T) {
	blobtest.Each(t, testBackupLoop)
}

func testBackupLoop(t *testing.T, reg *blobstore.Registry, url string) {
	n := greytest.NewNode(t, engine.Config{})
	if err := checkBackupURL(reg, url); err != nil {
		t.Fatal(err)
	}
	bopts := blobstore.Options{Name: "backups", Environment: "test", CostTags: map[string]string{"team": "platform"}}
	const retain = 3
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runBackups(ctx, n.Engine, config.BackupConfig{URL: url, Interval: config.Duration(50 * time.Millisecond), Retain: retain}, reg, bopts, greytest.Logger(t))
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stop)

	bucket, err := reg.Open(context.Background(), url, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	seen := map[string]bool{}
	i := 0
	greytest.Eventually(t, 20*time.Second, func() bool {
		// Keep the state moving so backups cover new indexes.
		i++
		if _, err := n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: "noop"}}, false); err != nil {
			t.Errorf("submit %d: %v", i, err)
		}
		keys, err := listBackups(context.Background(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > retain+1 { // +1: written, not pruned yet
			t.Fatalf("%d backups kept, retain is %d: %v", len(keys), retain, keys)
		}
		for _, k := range keys {
			seen[k] = true
		}
		time.Sleep(10 * time.Millisecond)
		return len(seen) >= 2*retain+1
	})
	stop()

	keys, err := listBackups(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys { // written after the last look
		seen[k] = true
	}
	all := make([]string, 0, len(seen))
	for k := range seen {
		all = append(all, k)
	}
	slices.Sort(all)
	if len(keys) != retain || !slices.Equal(keys, all[len(all)-retain:]) {
		t.Fatalf("after the loop the bucket holds %v, want the newest %d of %v", keys, retain, all)
	}
	for _, k := range keys {
		if !backupName.MatchString(k) {
			t.Errorf("backup name %q does not match %v", k, backupName)
		}
	}
	// The newest file is a sound snapshot of this cluster, tagged.
	newest := keys[len(keys)-1]
	tags, err := bucket.ReadTags(context.Background(), newest)
	if err != nil || tags["grey-environment"] != "test" || tags["team"] != "platform" {
		t.Errorf("tags of %s = %v, %v", newest, tags, err)
	}
	f, err := bucket.NewReader(context.Background(), newest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := cluster.ReadSnapshot(f, t.TempDir())
	if err != nil {
		t.Fatalf("newest backup %s: %v", keys[len(keys)-1], err)
	}
	defer st.Close()
	if st.Header.ClusterID != n.Store.ClusterID() || st.Store.Len() == 0 {
		t.Errorf("newest backup: header %+v, %d tasks", st.Header, st.Store.Len())
	}
}

// TestBackupOnlyOnLeader runs the loop on a node that does not lead (it
// was stopped: engine, then Raft) and checks nothing is written.
func TestBackupOnlyOnLeader(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	dir := t.TempDir()
	eng := n.Engine
	n.Close()
	if eng.IsLeader() {
		t.Fatal("a stopped node still leads")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	runBackups(ctx, eng, config.BackupConfig{URL: "file://" + filepath.ToSlash(dir), Interval: config.Duration(20 * time.Millisecond), Retain: 2}, blobtest.Registry(t), blobstore.Options{}, greytest.Logger(t))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("a node that does not lead wrote %d files", len(entries))
	}
}

func TestCheckBackupURL(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"":                         true,
		"file:///var/backups/grey": true,
		"s3://bucket?region=eu":    true,
		"gs://bucket":              true,
		"azblob://container":       true,
		"s3://":                    false, // no bucket
		"nope://x":                 false,
	} {
		if err := checkBackupURL(blobtest.Registry(t), url); (err == nil) != ok {
			t.Errorf("checkBackupURL(%q) = %v, want ok %v", url, err, ok)
		}
	}
}

// TestStartupRefusesMissingBackupBucket: a backup bucket that does not
// exist stops start-up with its name (on each emulator offered).
func TestStartupRefusesMissingBackupBucket(t *testing.T) {
	for _, scheme := range []string{"s3", "gs", "azblob"} {
		t.Run(scheme, func(t *testing.T) {
			u := blobtest.NewBucket(t, scheme) // sets the credentials
			missing := strings.Replace(u, "grey-test-", "grey-missing-", 1)
			cfg := config.Default()
			cfg.Node.DataDir = t.TempDir()
			cfg.Raft.Backup.URL = missing
			_, err := New(cfg, greytest.Logger(t), WithBlobRegistry(blobtest.Registry(t)))
			if err == nil || !strings.Contains(err.Error(), "raft.backup.url") || !strings.Contains(err.Error(), "grey-missing-") {
				t.Fatalf("start-up with a missing backup bucket: %v", err)
			}
		})
	}
}
