package blobstore

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/grey-distributed/grey/greyerr"
)

// MaxKeyBytes bounds a key, prefix included (S3's and GCS's limit).
const MaxKeyBytes = 1024

// ValidateKey checks a key relative to a Bucket: 1 to MaxKeyBytes bytes of
// UTF-8, "/"-separated segments, none empty, "." or ".."; no leading "/"
// (absolute path), no backslash, no NUL or other control character. These
// rules are what keeps a tenant view's keys under its prefix on every
// driver: fileblob maps keys to paths, and an S3 or GCS key with ".."
// becomes a path in any tool that mirrors the bucket to disk.
func ValidateKey(key string) error {
	bad := func(format string, args ...any) error {
		return greyerr.Invalid("key", format, args...)
	}
	switch {
	case key == "":
		return bad("is empty")
	case len(key) > MaxKeyBytes:
		return bad("is %d bytes, more than the limit of %d", len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return bad("is not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("%q is absolute (starts with \"/\")", short(key))
	case strings.ContainsRune(key, '\\'):
		return bad("%q contains a backslash", short(key))
	}
	for _, r := range key {
		if r == 0 || unicode.IsControl(r) {
			return bad("%q contains a control character (%U)", short(key), r)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return bad("%q has an empty segment (\"//\" or a trailing \"/\")", short(key))
		case ".", "..":
			return bad("%q has a %q segment", short(key), seg)
		}
	}
	return nil
}

// validatePrefix checks a List prefix: "" or a key's start (it may end in
// "/", and must not hold "." or ".." segments or control characters).
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	k := strings.TrimSuffix(prefix, "/")
	if err := ValidateKey(k); err != nil {
		e := err.(*greyerr.Error)
		e.Field = "prefix"
		return e
	}
	return nil
}

// short returns key cut to 64 bytes for messages.
func short(key string) string {
	if len(key) <= 64 {
		return key
	}
	return key[:64] + "..."
}
