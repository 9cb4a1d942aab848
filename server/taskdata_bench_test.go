package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/task"
)

// BenchmarkPayloadRef is one task whose payload goes by payload_ref, end to
// end through a greyd: reserve an upload, PUT the bytes to the signed URL,
// submit (Grey reads and hashes the object, retags an untagged one), lease
// (the bytes are read back and checked for the worker), run (noop), wait.
// MB/s counts the payload once. The bucket is file:// and each emulator
// configured (GREY_TEST_S3_URL, GREY_TEST_GCS_URL, GREY_TEST_AZBLOB_URL).
// bench/README.md has the numbers.
func BenchmarkPayloadRef(b *testing.B) {
	for _, scheme := range []string{"file", "s3", "gs", "azblob"} {
		for _, size := range []int{1 << 20, 20 << 20} {
			b.Run(scheme+"/"+sizeName(size), func(b *testing.B) {
				url := ""
				if scheme != "file" {
					url = blobtest.NewBucket(b, scheme)
				}
				_, mk := startDataServer(b, url, 0)
				c := mk("bench")
				ctx := context.Background()
				payload := bigJSON(size, 'b')
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					ref, err := c.UploadPayload(ctx, payload)
					if err != nil {
						b.Fatal(err)
					}
					tk, err := c.Submit(ctx, task.Spec{Kind: "noop", PayloadRef: ref})
					if err != nil {
						b.Fatal(err)
					}
					if tk, err = c.Wait(ctx, tk.ID); err != nil || tk.Status != task.Completed {
						b.Fatalf("%+v, %v", tk, err)
					}
				}
			})
		}
	}
}

// BenchmarkPlainCopy is the limit BenchmarkPayloadRef is held against: the
// same bytes written to a file and read back on the same disk, as many
// times as Grey moves them (upload write; submit read; lease read).
func BenchmarkPlainCopy(b *testing.B) {
	for _, size := range []int{1 << 20, 20 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			payload := bigJSON(size, 'b')
			path := filepath.Join(b.TempDir(), "payload")
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if err := os.WriteFile(path, payload, 0o600); err != nil {
					b.Fatal(err)
				}
				for range 2 {
					if _, err := os.ReadFile(path); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return itoa(n>>20) + "MiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
