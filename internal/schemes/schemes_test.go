package schemes_test

import (
	"strings"
	"testing"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/schemes"
)

type opener func() string

func TestTable(t *testing.T) {
	tb := schemes.New[opener]("port", "thing", func(s string) string { return strings.Replace(s, "secret", "xxxxx", 1) })
	if err := tb.Register("Mem", func() string { return "mem" }); err != nil {
		t.Fatal(err)
	}
	if err := tb.Register("mem", func() string { return "again" }); err == nil || !strings.Contains(err.Error(), `port: scheme "mem" is registered twice`) {
		t.Errorf("second registration: %v", err)
	}
	if err := tb.Register("x", nil); err == nil {
		t.Error("nil opener registered")
	}
	if err := tb.Register("", func() string { return "" }); err == nil {
		t.Error("empty scheme registered")
	}
	if err := tb.Register("pg", func() string { return "pg" }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tb.Schemes(), ","); got != "mem,pg" {
		t.Errorf("schemes %s", got)
	}
	u, o, err := tb.Lookup("MEM://a/b")
	if err != nil || o() != "mem" || u.Host != "a" {
		t.Fatalf("lookup: %v, %v", u, err)
	}
	for raw, want := range map[string]string{
		"://bad":                 "thing URL is not a URL",
		"just-a-path":            `thing URL "just-a-path" has no scheme (want one of mem, pg)`,
		"s3://u:secret@b/k":      `thing scheme "s3" is not supported by this build (it has mem, pg)`,
		"no-scheme-secret/x?a=b": `has no scheme`,
	} {
		_, _, err := tb.Lookup(raw)
		if !greyerr.Is(err, greyerr.InvalidArgument) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("lookup %q: %v, want %q without the secret", raw, err, want)
		}
	}
}
