package blobstore_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/internal/blobtest"
)

// BenchmarkPutGet writes then reads back 1 MiB and 20 MiB objects through
// the port on file:// and each emulator the environment offers, against a
// plain file copy of the same bytes on the same disk (the limit). Numbers
// are in bench/README.md.
func BenchmarkPutGet(b *testing.B) {
	for _, size := range []int{1 << 20, 20 << 20} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		b.Run(fmt.Sprintf("copy/%dMiB", size>>20), func(b *testing.B) {
			dir := b.TempDir()
			src := filepath.Join(dir, "src")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(2 * size))
			for i := 0; b.Loop(); i++ {
				dst := filepath.Join(dir, fmt.Sprintf("dst-%d", i%4))
				if err := copyFile(src, dst); err != nil {
					b.Fatal(err)
				}
				if _, err := os.ReadFile(dst); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, scheme := range []string{"file", "s3", "gs", "azblob"} {
			b.Run(fmt.Sprintf("%s/%dMiB", scheme, size>>20), func(b *testing.B) {
				u := blobtest.NewBucket(b, scheme)
				bk, err := blobtest.Registry(b).Open(b.Context(), u, blobstore.Options{Environment: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				defer bk.Close()
				v, _ := bk.Tenant("bench")
				b.SetBytes(int64(2 * size))
				for i := 0; b.Loop(); i++ {
					key := fmt.Sprintf("obj-%d", i%4)
					if err := v.Put(b.Context(), key, data, nil); err != nil {
						b.Fatal(err)
					}
					got, err := v.Get(b.Context(), key, 0)
					if err != nil || len(got) != size {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
