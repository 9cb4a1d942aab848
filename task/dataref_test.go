package task_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func TestParseRef(t *testing.T) {
	ok := map[string]string{
		"uploads/0190a1b2-c3d4":               "uploads/0190a1b2-c3d4",
		"results/0190a1b2":                    "results/0190a1b2",
		"tenants/acme/uploads/x":              "uploads/x",
		"uploads/a/b.json":                    "uploads/a/b.json",
		"uploads/" + strings.Repeat("x", 800): "uploads/" + strings.Repeat("x", 800),
	}
	for in, want := range ok {
		got, err := task.ParseRef("payload_ref", "acme", in)
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]greyerr.Code{
		"":                                     greyerr.InvalidArgument,
		"uploads/a\x00b":                       greyerr.InvalidArgument,
		"uploads/a\nb":                         greyerr.InvalidArgument,
		"uploads/" + strings.Repeat("k", 2048): greyerr.InvalidArgument,
		"uploads//x":                           greyerr.InvalidArgument,
		"uploads/./x":                          greyerr.InvalidArgument,
		"uploads/":                             greyerr.InvalidArgument,
		"uploads/\xff":                         greyerr.InvalidArgument,
		"uploads/../../other/uploads/x":        greyerr.PermissionDenied,
		"../other/uploads/x":                   greyerr.PermissionDenied,
		"tenants/other/uploads/x":              greyerr.PermissionDenied,
		"tenants/acme":                         greyerr.PermissionDenied,
		"s3://bucket/tenants/acme/x":           greyerr.PermissionDenied,
		"file:///etc/passwd":                   greyerr.PermissionDenied,
		"/tenants/acme/uploads/x":              greyerr.PermissionDenied,
		"uploads\\..\\x":                       greyerr.PermissionDenied,
		"modules/abc":                          greyerr.PermissionDenied,
		"backups/x":                            greyerr.PermissionDenied,
	}
	for in, code := range bad {
		_, err := task.ParseRef("payload_ref", "acme", in)
		if greyerr.CodeOf(err) != code {
			t.Errorf("ParseRef(%q): err %v, want code %s", in, err, code)
		}
		if err != nil && !strings.Contains(err.Error(), "payload_ref") {
			t.Errorf("ParseRef(%q): error %v does not name the field", in, err)
		}
	}
}

func TestSpecPayloadAndRef(t *testing.T) {
	s := task.Spec{Kind: "echo", Payload: []byte(`1`), PayloadRef: "uploads/x"}
	if err := s.Validate("", task.Limits{}); greyerr.CodeOf(err) != greyerr.InvalidArgument {
		t.Fatalf("payload and payload_ref: %v", err)
	}
}

// FuzzParseRef checks that whatever a tenant sends as payload_ref, an
// accepted one is a key inside the uploads/ or results/ areas with no way
// out of the tenant's prefix.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"uploads/x", "results/y", "tenants/acme/uploads/z", "tenants/b/uploads/z", "../x", "uploads/../x",
		"s3://b/k", "uploads/\x00", "uploads//x", "/abs", "uploads/a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		key, err := task.ParseRef("payload_ref", "acme", ref)
		if err != nil {
			if c := greyerr.CodeOf(err); c != greyerr.InvalidArgument && c != greyerr.PermissionDenied {
				t.Fatalf("code %s for %q", c, ref)
			}
			return
		}
		if !strings.HasPrefix(key, task.UploadsArea) && !strings.HasPrefix(key, task.ResultsArea) {
			t.Fatalf("%q accepted as %q, outside the areas", ref, key)
		}
		if !utf8.ValidString(key) || len(key) > task.MaxRefBytes || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
			t.Fatalf("%q accepted as malformed %q", ref, key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q accepted with segment %q", ref, seg)
			}
		}
		for _, r := range key {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("%q accepted with a control character", ref)
			}
		}
	})
}
