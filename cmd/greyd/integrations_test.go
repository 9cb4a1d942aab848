package main

import (
	"bytes"
	"strings"
	"testing"
)

// greyd --integrations loads the seed's integrations file beside the main
// config (print-config shows its cloud block), and its database block as
// written (quorum: majority over one PostgreSQL), password masked.
func TestIntegrationsFlag(t *testing.T) {
	t.Setenv("GREY_OTEL_ENDPOINT", "http://otel:4318")
	t.Setenv("GREY_PG_URL", "postgres://grey:s3cret@db/grey")
	var out, errb bytes.Buffer
	code := run([]string{"--integrations", "../../config/testdata/grey-integrations-nodb.yaml", "--print-config"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"provider: aws", "region: us-east-1", "project: grey", "team: platform"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("print-config lacks %q", want)
		}
	}
	out.Reset()
	errb.Reset()
	code = run([]string{"--integrations", "../../config/testdata/grey-integrations.yaml", "--print-config"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "url: postgres://grey:xxxxx@db/grey") || !strings.Contains(out.String(), "quorum: majority") || strings.Contains(out.String(), "s3cret") {
		t.Errorf("seed file with its database block: exit %d, %s\n%s", code, errb.String(), out.String())
	}
}

// The binary links every blob driver, and each scheme once.
func TestBlobDrivers(t *testing.T) {
	reg, err := blobDrivers()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Schemes(), ","); got != "azblob,file,gs,mem,s3" {
		t.Errorf("schemes %s", got)
	}
}

// The binary links the event drivers, each scheme once.
func TestEventDrivers(t *testing.T) {
	reg, err := eventDrivers()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Schemes(), ","); !strings.Contains(got, "mem") {
		t.Errorf("schemes %s", got)
	}
}
