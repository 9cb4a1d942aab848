package modelstore

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// MaxTarEntries bounds the entries of a SavedModel tar: a real SavedModel
// has a handful (saved_model.pb, variables/, assets/), so a tar with more
// is refused before it costs anything to walk or unpack.
const MaxTarEntries = 10000

// Check is the cheap structural check of a pushed artifact: it answers nil
// when the size bytes of r look like a model of framework f, else an
// InvalidArgument error that says why. A TorchScript file (torch.jit.save)
// is a zip archive whose one top directory holds data.pkl and code/ or
// constants.pkl (a plain torch.save of weights has no code, and is
// refused); a SavedModel is pushed as an uncompressed tar of its directory
// holding saved_model.pb (or saved_model.pbtxt) and variables/, with only
// files and directories under relative paths. The runtime's real load is
// the final check; this one refuses the wrong file before it is stored.
func Check(f ai.Framework, r io.ReaderAt, size int64) error {
	switch f {
	case ai.PyTorch:
		return checkTorchScript(r, size)
	case ai.TensorFlow:
		return checkSavedModel(io.NewSectionReader(r, 0, size))
	default:
		return greyerr.Invalid("framework", "must be pytorch or tensorflow, got %q", f)
	}
}

func notTorchScript(format string, args ...any) error {
	return greyerr.Invalid("body", "not a TorchScript model: %s", fmt.Sprintf(format, args...))
}

func checkTorchScript(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		if isTar(r, size) {
			return notTorchScript("the file is a tar archive (a TensorFlow SavedModel? push it with --framework tensorflow)")
		}
		return notTorchScript("the file is not a zip archive (save the model with torch.jit.save)")
	}
	top := ""
	var data, code, constants bool
	for _, f := range zr.File {
		dir, rest, ok := strings.Cut(f.Name, "/")
		if !ok || dir == "" {
			return notTorchScript("entry %q is not under the archive's top directory", f.Name)
		}
		if top == "" {
			top = dir
		} else if dir != top {
			return notTorchScript("entries under two top directories, %q and %q", top, dir)
		}
		switch {
		case rest == "data.pkl":
			data = true
		case rest == "constants.pkl":
			constants = true
		case strings.HasPrefix(rest, "code/"):
			code = true
		}
	}
	if !data {
		return notTorchScript("no data.pkl in the archive")
	}
	if !code && !constants {
		return notTorchScript("the archive has no code/ or constants.pkl (a torch.save of weights, not a torch.jit.save of a scripted or traced module)")
	}
	return nil
}

// isTar reports whether r starts with a tar header.
func isTar(r io.ReaderAt, size int64) bool {
	_, err := tar.NewReader(io.NewSectionReader(r, 0, size)).Next()
	return err == nil
}

func notSavedModel(format string, args ...any) error {
	return greyerr.Invalid("body", "not a TensorFlow SavedModel: %s", fmt.Sprintf(format, args...))
}

// cleanTarName returns the entry's path relative to the model directory
// ("" for the directory itself), or an error for a path that leaves it.
func cleanTarName(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) {
		return "", notSavedModel("tar entry %q is not a relative path", name)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if seg == ".." {
			return "", notSavedModel("tar entry %q leaves the model directory", name)
		}
	}
	p := path.Clean(name)
	if p == "." {
		return "", nil
	}
	return p, nil
}

// walkTar calls f for every entry of a SavedModel tar, with its cleaned
// path, after refusing unsafe entries.
func walkTar(r io.Reader, f func(name string, h *tar.Header, tr *tar.Reader) error) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return notSavedModel("the tar archive is empty")
			}
			return nil
		}
		if err != nil {
			if n == 0 {
				if bytes.HasPrefix(peek(r), []byte("\x1f\x8b")) {
					return notSavedModel("the file is gzip-compressed; push the uncompressed tar of the SavedModel directory")
				}
				return notSavedModel("the file is not a tar archive of the SavedModel directory")
			}
			return notSavedModel("damaged tar archive: %v", err)
		}
		if n >= MaxTarEntries {
			return notSavedModel("more than %d entries in the tar archive", MaxTarEntries)
		}
		name, err := cleanTarName(h.Name)
		if err != nil {
			return err
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return notSavedModel("tar entry %q is a sparse file (refused)", h.Name)
			}
		}
		if h.Size < 0 {
			return notSavedModel("tar entry %q has a negative size", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		case tar.TypeXGlobalHeader:
			continue
		default:
			return notSavedModel("tar entry %q is not a file or a directory (links and devices are refused)", h.Name)
		}
		if err := f(name, h, tr); err != nil {
			return err
		}
	}
}

// peek returns the first bytes of r when r is a section reader (the
// check's), else nil.
func peek(r io.Reader) []byte {
	sr, ok := r.(*io.SectionReader)
	if !ok {
		return nil
	}
	b := make([]byte, 2)
	n, _ := sr.ReadAt(b, 0)
	return b[:n]
}

func checkSavedModel(r *io.SectionReader) error {
	if _, err := zip.NewReader(r, r.Size()); err == nil {
		return notSavedModel("the file is a zip archive (a TorchScript model? push it with --framework pytorch)")
	}
	var pb, variables bool
	err := walkTar(r, func(name string, h *tar.Header, _ *tar.Reader) error {
		switch {
		case name == "saved_model.pb" || name == "saved_model.pbtxt":
			if h.Typeflag == tar.TypeReg {
				pb = true
			}
		case name == "variables" || strings.HasPrefix(name, "variables/"):
			variables = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !pb {
		return notSavedModel("no saved_model.pb or saved_model.pbtxt at the top of the tar (tar the SavedModel directory's contents, as greyctl model push DIR does)")
	}
	if !variables {
		return notSavedModel("no variables/ directory in the tar")
	}
	return nil
}

// Unpack writes the SavedModel tar r into dir (created, mode 0700), refusing
// what Check refuses: paths that leave dir, links, devices and sparse
// files. It writes at most maxBytes bytes of file contents (the artifact's
// size is a natural bound: a tar holds its files' bytes), refusing a tar
// that claims more. File modes are 0600 and directories 0700, whatever the
// tar says. The runtime loads the directory.
func Unpack(r io.Reader, dir string, maxBytes int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("unpack model: %w", err)
	}
	left := maxBytes
	return walkTar(r, func(name string, h *tar.Header, tr *tar.Reader) error {
		if h.Size > left {
			return notSavedModel("tar entry %q: its %d bytes take the files past %d bytes", h.Name, h.Size, maxBytes)
		}
		left -= h.Size
		if name == "" {
			return nil
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if h.Typeflag == tar.TypeDir {
			return os.MkdirAll(p, 0o700)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("unpack model: %w", err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("unpack model: %w", err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			_ = f.Close()
			return fmt.Errorf("unpack model %s: %w", name, err)
		}
		return f.Close()
	})
}

// TarDir writes the contents of dir to w as an uncompressed tar in which
// the same directory always gives the same bytes (so the same digest):
// names sorted, relative to dir, without a leading "./"; modification
// times zero; owner 0:0 without names; modes 0644 for files and 0755 for
// directories. Symbolic links and other special files are refused.
func TarDir(dir string, w io.Writer) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return fmt.Errorf("%s: not a file or a directory (links are not followed)", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("tar %s: %w", dir, err)
		}
		h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size(), ModTime: time.Unix(0, 0)}
		if fi.IsDir() {
			h = &tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", dir, err)
		}
		if fi.IsDir() {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("tar %s: %w", dir, err)
		}
		n, err := io.Copy(tw, f)
		_ = f.Close()
		if err == nil && n != fi.Size() {
			err = errors.New("file changed while it was read")
		}
		if err != nil {
			return fmt.Errorf("tar %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return nil
}
