package main

import (
	"bytes"
	"strings"
	"testing"
)

// greyd --integrations loads the seed's integrations file beside the main
// config (print-config shows its cloud block), and refuses the seed's
// database block as not built yet.
func TestIntegrationsFlag(t *testing.T) {
	t.Setenv("GREY_OTEL_ENDPOINT", "http://otel:4318")
	t.Setenv("GREY_PG_URL", "postgres://grey@db/grey")
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
	if code != 2 || !strings.Contains(errb.String(), "grey-integrations.yaml: database.postgres.quorum (line 6)") || !strings.Contains(errb.String(), "quorum archive") {
		t.Errorf("seed file with its database block: exit %d, %s", code, errb.String())
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
