package pgarchive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"unicode"

	gojson "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grey-distributed/grey/greyerr"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want greyerr.Code
	}{
		{&pgconn.PgError{Code: "57P01"}, greyerr.Unavailable},
		{&pgconn.PgError{Code: "08006"}, greyerr.Unavailable},
		{&pgconn.PgError{Code: "40001"}, greyerr.Unavailable},
		{&pgconn.PgError{Code: "40P01"}, greyerr.Unavailable},
		{&pgconn.PgError{Code: "53300"}, greyerr.Unavailable},
		{&pgconn.PgError{Code: "28P01"}, greyerr.PermissionDenied},
		{&pgconn.PgError{Code: "28000"}, greyerr.PermissionDenied},
		{&pgconn.PgError{Code: "42501"}, greyerr.PermissionDenied},
		{&pgconn.PgError{Code: "3D000"}, greyerr.FailedPrecondition},
		{&pgconn.PgError{Code: "42P01"}, greyerr.FailedPrecondition},
		{&pgconn.PgError{Code: "22021"}, greyerr.InvalidArgument},
		{&pgconn.PgError{Code: "23505"}, greyerr.Internal},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), greyerr.Unavailable},
		{io.ErrUnexpectedEOF, greyerr.Unavailable},
		{fmt.Errorf("x: %w", context.Canceled), greyerr.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), greyerr.DeadlineExceeded},
		{errors.New("something else"), greyerr.Internal},
	} {
		if got := greyerr.CodeOf(classify(c.err, "op")); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
	if classify(nil, "op") != nil {
		t.Error("classify(nil) is not nil")
	}
	ge := greyerr.New(greyerr.NotFound, "x")
	if classify(ge, "op") != error(ge) {
		t.Error("a coded error is wrapped again")
	}
}

// FuzzRedact: no password given in a URL or a key=value string survives
// in an error's text.
func FuzzRedact(f *testing.F) {
	f.Add("grey", "s3cret", "db")
	f.Add("u", "p@ss:w/ord", "x")
	f.Add("0!!!!!!", "0", "0000000000000ZQ J")
	f.Fuzz(func(t *testing.T, user, pw, db string) {
		// The password starts with a marker that nothing else holds, so
		// finding the marker means finding the password.
		const marker = "ZQJ"
		// The key=value form drops spaces from user and db, which can
		// join their pieces into the marker: check both forms.
		kvUser, kvDB := strings.Join(strings.Fields(user), ""), strings.Join(strings.Fields(db), "")
		if strings.IndexFunc(pw, unicode.IsSpace) >= 0 || strings.Contains(user+db, marker) || strings.Contains(kvUser+"\x00"+kvDB, marker) {
			return
		}
		pw = marker + pw
		u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: "h:5432", Path: "/" + db}
		for _, msg := range []string{
			"cannot parse `" + u.String() + "`: bad",
			"connect failed: host=h user=" + kvUser + " password=" + pw + " dbname=" + kvDB,
		} {
			if got := redactErr(errors.New(msg)); strings.Contains(got, marker) {
				t.Fatalf("%q keeps the password %q: %q", msg, pw, got)
			}
		}
	})
}

// FuzzValidMatchesEncodingJSON: Upsert checks payloads and results with
// goccy's validator instead of encoding/json's (the same grammar for less
// CPU); both must agree on every input, or a record would be stored that
// Grey calls invalid, or refused that it calls valid.
func FuzzValidMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"{}", `{"a":[1,2.5e3,"x",null,true]}`, "{}\x00x", "\x00", "{\"a\":\"\xff\"}", "1 2", " {} ", "", "[1,]", `"\u12"`, `{"a":1}}`, "nul", "1e", "-", "[\"\t\"]", `"\ud800"`, "01", "-0", "1.", `{"a" 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if std, goccy := json.Valid(b), gojson.Valid(b); std != goccy {
			t.Fatalf("%q: encoding/json says %v, goccy %v", b, std, goccy)
		}
	})
}
