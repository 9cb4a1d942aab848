package memblob_test

import (
	"testing"

	"gocloud.dev/blob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/blobstoretest"
	"github.com/grey-distributed/grey/blobstore/memblob"
)

func TestConformance(t *testing.T) {
	var gb *blob.Bucket
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Bucket {
		reg := blobstore.NewRegistry()
		if err := memblob.Register(reg); err != nil {
			t.Fatal(err)
		}
		b, err := reg.Open(t.Context(), "mem://", blobstoretest.BucketOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}, blobstoretest.Options{AsTargets: []any{&gb}})
}
