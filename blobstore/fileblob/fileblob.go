// Package fileblob is the blobstore driver for a directory on local disk
// (file:///abs/path), over gocloud.dev/blob/fileblob. The directory is
// created (mode 0700) when missing. Tags are kept as metadata in the
// sidecar .attrs files. Signed URLs work when the URL carries base_url (the
// URL prefix a server of the files answers on) and secret_key_path (an HMAC
// key file, created when missing), gocloud's own parameters. As reaches
// **blob.Bucket.
package fileblob

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"gocloud.dev/blob/fileblob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/gocloudblob"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of directory buckets.
const Scheme = "file"

// Register registers the file:// driver in r.
func Register(r *blobstore.Registry) error {
	return r.Register(Scheme, blobstore.OpenerFunc(open))
}

func open(ctx context.Context, u *url.URL, _ blobstore.Env) (blobstore.Driver, error) {
	q := u.Query()
	if q.Get("metadata") == "skip" {
		return nil, greyerr.Invalid("url", "file:// metadata=skip would drop the cost tags Grey writes on every object")
	}
	signed := q.Get("base_url") != "" && q.Get("secret_key_path") != ""
	if q.Get("create_dir") == "" {
		q.Set("create_dir", "true")
	}
	if q.Get("dir_file_mode") == "" {
		q.Set("dir_file_mode", "0700")
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, greyerr.Invalid("url", "file:// URL %q names host %q; write file:///absolute/path", u.Redacted(), u.Host)
	}
	if !filepath.IsAbs(filepath.FromSlash(u.Path)) {
		return nil, greyerr.Invalid("url", "file:// URL needs an absolute path, got %q", u.Path)
	}
	c := *u
	c.RawQuery = q.Encode()
	b, err := (&fileblob.URLOpener{}).OpenBucketURL(ctx, &c)
	if err != nil {
		return nil, fmt.Errorf("file bucket %s: %w", u.Path, err)
	}
	hooks := gocloudblob.Hooks{}
	if q.Get("no_tmp_dir") != "" {
		hooks.Hidden = inProgress
	}
	return gocloudblob.New(b, blobstore.Capabilities{Scheme: Scheme, Tags: blobstore.TagsAsMetadata, SignedURL: signed}, hooks), nil
}

// inProgress reports whether key is a write under way: with no_tmp_dir,
// gocloud's fileblob writes <key>.<nanoseconds in hex>.tmp next to the
// object and renames it into place on Close, and its listing shows that
// file as an object. A walk that deleted it (a sweep of results) would
// make the write fail ("rename …: no such file or directory").
func inProgress(key string) bool {
	rest, ok := strings.CutSuffix(key, ".tmp")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || i == len(rest)-1 {
		return false
	}
	for _, c := range rest[i+1:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// URL returns the file:// bucket URL of dir (made absolute).
func URL(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: Scheme, Path: filepath.ToSlash(abs)}).String(), nil
}
