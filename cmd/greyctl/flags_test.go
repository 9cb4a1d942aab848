package main

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestParsePayload(t *testing.T) {
	t.Parallel()
	files := map[string]string{"job.json": "  {\"a\": [1, 2]}\n", "bad.json": "{nope"}
	readFile := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	tests := []struct {
		in, stdin, want string
		wantErr         string
	}{
		{in: "", want: ""},
		{in: `{"msg":"hi"}`, want: `{"msg":"hi"}`},
		{in: `42`, want: `42`},
		{in: `"text"`, want: `"text"`},
		{in: `@job.json`, want: `{"a": [1, 2]}`},
		{in: `@-`, stdin: "[true]\n", want: `[true]`},
		{in: `{broken`, wantErr: "not valid JSON"},
		{in: `@bad.json`, wantErr: "bad.json is not valid JSON"},
		{in: `@missing.json`, wantErr: "missing.json"},
		{in: `@`, wantErr: "needs a file name"},
	}
	for _, tc := range tests {
		got, err := parsePayload(tc.in, readFile, strings.NewReader(tc.stdin))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCodeOf(err) != exitUsage {
				t.Errorf("parsePayload(%q) = %s, %v; want usage error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("parsePayload(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRunAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "+10s", want: now.Add(10 * time.Second)},
		{in: "+1h30m", want: now.Add(90 * time.Minute)},
		{in: "+0s", want: now},
		{in: "2026-05-06T07:08:09Z", want: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)},
		{in: "2026-05-06T07:08:09.5+02:00", want: time.Date(2026, 5, 6, 5, 8, 9, 500e6, time.UTC)},
		{in: "+-5s", wantErr: true},
		{in: "+soon", wantErr: true},
		{in: "10s", wantErr: true},
		{in: "2026-05-06", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseRunAt(tc.in, now)
		if tc.wantErr {
			if err == nil || exitCodeOf(err) != exitUsage {
				t.Errorf("parseRunAt(%q) = %v, %v; want usage error", tc.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseRunAt(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseKeyValues(t *testing.T) {
	t.Parallel()
	got, err := parseKeyValues("--label", []string{"gpu=true", "tee=sgx", "empty=", "eq=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gpu": "true", "tee": "sgx", "empty": "", "eq": "a=b"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if m, err := parseKeyValues("--label", nil); m != nil || err != nil {
		t.Errorf("no labels = %v, %v; want nil, nil", m, err)
	}
	for _, bad := range [][]string{{"novalue"}, {"=v"}, {"a=1", "a=2"}} {
		if _, err := parseKeyValues("--label", bad); err == nil || exitCodeOf(err) != exitUsage {
			t.Errorf("parseKeyValues(%q) = %v, want usage error", bad, err)
		}
	}
}

func TestPlanBatches(t *testing.T) {
	t.Parallel()
	jobs := planBatches(1003, 3, 200)
	total := map[int]int{}
	for _, j := range jobs {
		if j.n < 1 || j.n > 200 {
			t.Errorf("batch of %d", j.n)
		}
		total[j.tenant] += j.n
	}
	if total[0] != 335 || total[1] != 334 || total[2] != 334 {
		t.Errorf("split = %v, want 335/334/334", total)
	}
	// Tenants are interleaved.
	if jobs[0].tenant != 0 || jobs[1].tenant != 1 || jobs[2].tenant != 2 || jobs[3].tenant != 0 {
		t.Errorf("order = %v", jobs[:4])
	}
	if got := planBatches(2, 5, 10); len(got) != 2 {
		t.Errorf("more tenants than tasks: %v", got)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(lat, 0.5); p != 50*time.Millisecond {
		t.Errorf("p50 = %s", p)
	}
	if p := percentile(lat, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 = %s", p)
	}
	if p := percentile(lat[:1], 0.99); p != time.Millisecond {
		t.Errorf("p99 of one = %s", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of none = %s", p)
	}
}

// exitCodeOf returns the exit code an error would end greyctl with.
func exitCodeOf(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}
