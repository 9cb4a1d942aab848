package modelcache

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/grey-distributed/grey/greyerr"
)

// MaxEntries bounds the entries of one unpacked tar.
const MaxEntries = 100_000

// Unpack extracts a tar (plain, or gzipped) into dir, which must exist and
// should be empty. Only directories and regular files are extracted;
// absolute names, names with "..", links (symbolic or hard), devices and
// other special files, a name given twice, more than MaxEntries entries and
// more than maxBytes of file contents are refused (FailedPrecondition: the
// artifact is not a model Grey can load). On error dir may hold part of
// the tar; the caller removes it.
func Unpack(r io.Reader, dir string, maxBytes int64) error {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return bad("not a gzipped tar: %v", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	tr := tar.NewReader(r)
	var total int64
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bad("not a tar of a SavedModel directory: %v", err)
		}
		n++
		if n > MaxEntries {
			return bad("the tar has more than %d entries", MaxEntries)
		}
		name, err := localName(h.Name)
		if err != nil {
			return err
		}
		if name == "." {
			if h.Typeflag == tar.TypeDir {
				continue
			}
			return bad("tar entry %q names the directory itself", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return bad("tar entry %q: %v", h.Name, err)
			}
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars write TypeRegA
			if h.Size < 0 || h.Size > maxBytes-total {
				return bad("the tar's files hold more than %d bytes", maxBytes)
			}
			total += h.Size
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return bad("tar entry %q: %v", h.Name, err)
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				if errors.Is(err, os.ErrExist) {
					return bad("tar entry %q is given twice", h.Name)
				}
				return bad("tar entry %q: %v", h.Name, err)
			}
			_, err = io.CopyN(f, tr, h.Size)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return bad("tar entry %q: %v", h.Name, err)
			}
		case tar.TypeSymlink, tar.TypeLink:
			return bad("tar entry %q is a link: a SavedModel tar holds only directories and files", h.Name)
		default:
			return bad("tar entry %q is a special file (type %q): a SavedModel tar holds only directories and files", h.Name, h.Typeflag)
		}
	}
	if n == 0 {
		return bad("the tar is empty")
	}
	return nil
}

// localName checks a tar entry's name and returns it cleaned, relative to
// the extraction directory.
func localName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", bad("a tar entry has an empty or NUL-bearing name")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return "", bad("tar entry %q has an absolute name", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", bad("tar entry %q leaves the directory (\"..\")", name)
		}
	}
	clean := filepath.Clean(name)
	if clean != "." && !filepath.IsLocal(clean) {
		return "", bad("tar entry %q leaves the directory", name)
	}
	return clean, nil
}

func bad(format string, args ...any) error {
	return greyerr.New(greyerr.FailedPrecondition, "%s", fmt.Sprintf(format, args...))
}
