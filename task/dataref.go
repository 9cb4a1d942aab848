package task

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/grey-distributed/grey/greyerr"
)

// DataRef names an object of the tenant's task data (docs/TASKS.md): a
// payload given by payload_ref, or a result too large to keep inline. Ref
// is the object's key relative to the tenant's prefix; Size and SHA256 are
// what Grey read or wrote, so a changed object is detected.
type DataRef struct {
	// Ref is the key relative to the tenant's prefix ("uploads/<id>",
	// "results/<task id>").
	Ref string `json:"ref"`
	// Size is the object's length in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lower-case hex SHA-256 of the object's bytes.
	SHA256 string `json:"sha256"`
}

// The areas of a tenant's task data a payload_ref may name.
const (
	// UploadsArea holds payloads uploaded through POST /api/v1/uploads.
	UploadsArea = "uploads/"
	// ResultsArea holds results over the inline limit, one per task.
	ResultsArea = "results/"
)

// MaxRefBytes bounds a payload_ref. It leaves room under the stores' 1024
// byte key limit for the tenant prefix ("tenants/<id>/", at most 72 bytes).
const MaxRefBytes = 900

// ResultKey is where a task's result over the inline limit is stored,
// relative to the tenant's prefix.
func ResultKey(taskID ID) string { return ResultsArea + taskID }

// ParseRef checks a payload_ref for tenant and returns the object's key
// relative to the tenant's prefix. A ref is such a key ("uploads/<id>",
// "results/<task id>"); the full form "tenants/<tenant>/<key>" is accepted
// for the caller's own tenant. Anything that points elsewhere (a URL, an
// absolute path, a ".." segment, another tenant's prefix, a key outside
// the uploads/ and results/ areas) is PermissionDenied; a malformed key
// (empty, NUL or control characters, over MaxRefBytes, not UTF-8, empty
// or "." segments, a backslash) is InvalidArgument. field names the input
// in errors ("payload_ref", "tasks[3].payload_ref").
func ParseRef(field, tenant, ref string) (string, error) {
	bad := func(format string, args ...any) error { return greyerr.Invalid(field, format, args...) }
	deny := func(format string, args ...any) error {
		e := greyerr.New(greyerr.PermissionDenied, format, args...)
		e.Field = field
		return e
	}
	switch {
	case ref == "":
		return "", bad("is empty")
	case len(ref) > MaxRefBytes:
		return "", bad("is %d bytes, more than the limit of %d", len(ref), MaxRefBytes)
	case !utf8.ValidString(ref):
		return "", bad("is not valid UTF-8")
	}
	for _, r := range ref {
		if r == 0 || unicode.IsControl(r) {
			return "", bad("%q contains a control character (%U)", shortRef(ref), r)
		}
	}
	if strings.Contains(ref, "://") || strings.HasPrefix(ref, "/") || strings.ContainsRune(ref, '\\') || strings.ContainsRune(ref, ':') {
		return "", deny("%q is not a key in your tenant's task data: give the payload_ref that POST /api/v1/uploads returned (e.g. uploads/<id>), not a URL or a path", shortRef(ref))
	}
	segs := strings.Split(ref, "/")
	for _, s := range segs {
		switch s {
		case "..":
			return "", deny("%q has a \"..\" segment: a payload_ref cannot leave your tenant's prefix", shortRef(ref))
		case "", ".":
			return "", bad("%q has an empty or \".\" segment", shortRef(ref))
		}
	}
	key := ref
	if segs[0] == "tenants" {
		if len(segs) < 3 || segs[1] != tenant {
			return "", deny("%q is outside your tenant's prefix (tenants/%s/)", shortRef(ref), tenant)
		}
		key = strings.Join(segs[2:], "/")
	}
	if !strings.HasPrefix(key, UploadsArea) && !strings.HasPrefix(key, ResultsArea) {
		return "", deny("%q is outside the task data a payload may come from (%s... or %s...)", shortRef(ref), UploadsArea, ResultsArea)
	}
	if len(strings.Split(key, "/")) < 2 || strings.HasSuffix(key, "/") {
		return "", bad("%q names no object", shortRef(ref))
	}
	return key, nil
}

func shortRef(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}

// BinaryPayloadPrefix starts a payload object in the Open Inference
// Protocol's binary tensor data form (docs/INFERENCE.md, "Binary bodies"):
// the ASCII line "Inference-Header-Content-Length: <N>\n" (KServe's HTTP
// header of that name, written into the object so that the object alone,
// and so its SHA-256 in a proof, says where its JSON header ends), then N
// bytes of JSON header, then the raw tensor bytes. No JSON value starts
// with it, so the two forms of a payload object never mix up.
const BinaryPayloadPrefix = "Inference-Header-Content-Length: "

// IsBinaryPayload reports whether a payload object's bytes are in the
// binary form (they start with BinaryPayloadPrefix). Only kinds that read
// that form take such a payload; the engine refuses it for the others.
func IsBinaryPayload(b []byte) bool {
	return len(b) >= len(BinaryPayloadPrefix) && string(b[:len(BinaryPayloadPrefix)]) == BinaryPayloadPrefix
}
