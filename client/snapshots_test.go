package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/grey-distributed/grey/greyerr"
)

// fakeSnapshot builds a snapshot file in the envelope format.
func fakeSnapshot(payload string) []byte {
	hdr, _ := json.Marshal(map[string]any{"grey_snapshot": 1, "cluster_id": "c-1", "node_id": "n-1", "index": 42, "term": 3, "size": len(payload), "created_at": "2026-01-02T03:04:05Z"})
	b := append(hdr, '\n')
	b = append(b, payload...)
	sum := sha256.Sum256(b)
	return append(b, `{"sha256":"`+hex.EncodeToString(sum[:])+"\"}\n"...)
}

func TestSaveSnapshot(t *testing.T) {
	t.Parallel()
	good := fakeSnapshot(`{"version":1}` + "\n")
	var body atomic.Value
	body.Store(good)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/cluster/snapshot" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body.Load().([]byte))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)

	var out bytes.Buffer
	info, err := c.SaveSnapshot(t.Context(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), good) || info.ClusterID != "c-1" || info.NodeID != "n-1" || info.Index != 42 || info.Term != 3 || info.Size != 14 || info.CreatedAt.IsZero() {
		t.Errorf("SaveSnapshot = %+v, wrote %q", info, out.Bytes())
	}

	bad := bytes.Clone(good)
	bad[len(bad)-10] ^= 1
	for name, b := range map[string][]byte{
		"cut":        good[:len(good)-5],
		"corrupt":    bad,
		"trailing":   append(bytes.Clone(good), 'x'),
		"not a file": []byte("<html>hello</html>\n"),
	} {
		body.Store(b)
		if _, err := c.SaveSnapshot(t.Context(), io.Discard); err == nil {
			t.Errorf("%s: SaveSnapshot accepted a damaged file", name)
		}
	}
}

func TestRestoreSnapshot(t *testing.T) {
	t.Parallel()
	file := fakeSnapshot("payload\n")
	var got atomic.Value
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/octet-stream" || r.Method != http.MethodPost || r.URL.Path != "/api/v1/cluster/snapshot" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"code":"invalid_argument","message":"bad request","field":"body"}`))
			return
		}
		got.Store(string(b) + "|" + r.URL.RawQuery)
		if !bytes.Equal(b, file) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"code":"invalid_argument","message":"corrupt snapshot","field":"body"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"cluster_id":"c-1","index":42,"term":3,"size":8,"created_at":"2026-01-02T03:04:05Z","tasks":7,"tenants":2}`))
	}))
	t.Cleanup(ok.Close)
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"code":"unavailable","message":"no leader"}`))
	}))
	t.Cleanup(unavailable.Close)

	// A seekable body fails over from the unavailable server.
	c := newClient(t, unavailable.URL+","+ok.URL)
	info, err := c.RestoreSnapshot(t.Context(), bytes.NewReader(file), true)
	if err != nil {
		t.Fatal(err)
	}
	if info.Tasks != 7 || info.Tenants != 2 || info.ClusterID != "c-1" {
		t.Errorf("RestoreSnapshot = %+v", info)
	}
	if g := got.Load().(string); g != string(file)+"|force=true" {
		t.Errorf("server got %q", g)
	}

	// A stream cannot be sent twice: the first server's answer stands.
	c = newClient(t, unavailable.URL+","+ok.URL)
	if _, err := c.RestoreSnapshot(t.Context(), io.MultiReader(bytes.NewReader(file)), false); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("stream to an unavailable server = %v, want unavailable", err)
	}

	// The server's refusal comes back as its error.
	c = newClient(t, ok.URL)
	_, err = c.RestoreSnapshot(t.Context(), strings.NewReader("junk"), false)
	var ge *greyerr.Error
	if !greyerr.Is(err, greyerr.InvalidArgument) || !asError(err, &ge) || ge.Field != "body" {
		t.Errorf("restore of junk = %v, want invalid_argument on body", err)
	}
}

func asError(err error, ge **greyerr.Error) bool {
	g, ok := err.(*greyerr.Error)
	*ge = g
	return ok
}
