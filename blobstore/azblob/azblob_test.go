package azblob_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	sdkblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/azblob"
	"github.com/grey-distributed/grey/blobstore/blobstoretest"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

// Azurite's well-known development account (public, in Azure's docs).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

func uniq() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func setup(t *testing.T) (*blobstore.Registry, string) {
	endpoint := strings.TrimRight(testenv.ServiceURL(t, "azblob"), "/")
	t.Setenv("AZURE_STORAGE_KEY", azuriteKey)
	t.Setenv("AZURE_STORAGE_ACCOUNT", azuriteAccount)
	reg := blobstore.NewRegistry()
	if err := azblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg, endpoint
}

func bucketURL(endpoint, name string) string {
	return "azblob://" + name + "?" + url.Values{"endpoint": {endpoint}}.Encode()
}

func createContainer(t *testing.T, endpoint, name string) {
	cred, err := sdkblob.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientWithSharedKeyCredential(endpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Create(t.Context(), nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
}

// TestConformance runs the suite on Azurite, signed URLs (SAS) included;
// Azurite checks the SAS signature and its expiry.
func TestConformance(t *testing.T) {
	reg, endpoint := setup(t)
	var cc *container.Client
	var gb *blob.Bucket
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Bucket {
		name := "grey-conf-" + uniq()
		createContainer(t, endpoint, name)
		b, err := reg.Open(t.Context(), bucketURL(endpoint, name), blobstoretest.BucketOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}, blobstoretest.Options{FetchSignedURLs: true, SignatureEnforced: true, ExpiryEnforced: true, AsTargets: []any{&cc, &gb}})
}

func TestMissingContainer(t *testing.T) {
	reg, endpoint := setup(t)
	_, err := reg.Open(t.Context(), bucketURL(endpoint, "grey-no-such-"+uniq()), blobstore.Options{})
	if !greyerr.Is(err, greyerr.NotFound) || !strings.Contains(err.Error(), "grey-no-such-") {
		t.Fatalf("open of a missing container: %v, want NotFound naming it", err)
	}
}

func TestWrongKeyIsPermissionDenied(t *testing.T) {
	reg, endpoint := setup(t)
	name := "grey-conf-" + uniq()
	createContainer(t, endpoint, name)
	t.Setenv("AZURE_STORAGE_KEY", strings.Repeat("A", 86)+"==")
	_, err := reg.Open(t.Context(), bucketURL(endpoint, name), blobstore.Options{})
	if !greyerr.Is(err, greyerr.PermissionDenied) {
		t.Fatalf("open with a wrong key: %v, want PermissionDenied", err)
	}
}
