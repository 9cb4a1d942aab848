package mongoarchive_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/archive/mongoarchive"
	"github.com/grey-distributed/grey/greyerr"
)

func TestParseURLDefaults(t *testing.T) {
	c, err := mongoarchive.ParseURL("mongodb://u:p@127.0.0.1:27017")
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "grey" || c.Collection != "archive_tasks" || c.WriteConcern != "majority" || c.ReadConcern != "majority" || !c.RetryWrites {
		t.Errorf("defaults: %+v", c)
	}
	for _, want := range []string{"w=majority", "readConcernLevel=majority", "retryWrites=true", "serverSelectionTimeoutMS=5000", "connectTimeoutMS=5000"} {
		if !strings.Contains(c.URI, want) {
			t.Errorf("URI %s lacks %s", c.URI, want)
		}
	}
	if !strings.HasPrefix(c.URI, "mongodb://u:p@127.0.0.1:27017/?") {
		t.Errorf("URI %s", c.URI)
	}
}

func TestParseURLKnobs(t *testing.T) {
	c, err := mongoarchive.ParseURL("mongodb://h1:27017,h2:27018/archive?replicaSet=rs0&W=2&readconcernlevel=local&retryWrites=false&collection=tasks_v1&serverSelectionTimeoutMS=100&maxPoolSize=7")
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "archive" || c.Collection != "tasks_v1" || c.WriteConcern != "2" || c.ReadConcern != "local" || c.RetryWrites || !c.MaxPoolSizeSet {
		t.Errorf("knobs: %+v", c)
	}
	if strings.Contains(c.URI, "collection=") || strings.Contains(c.URI, "serverSelectionTimeoutMS=5000") || !strings.Contains(c.URI, "replicaSet=rs0") {
		t.Errorf("URI %s", c.URI)
	}
	// mongodb+srv is read without resolving the name.
	c, err = mongoarchive.ParseURL("mongodb+srv://u:p@cluster0.example.invalid/grey")
	if err != nil || c.Scheme != "mongodb+srv" {
		t.Errorf("srv: %+v, %v", c, err)
	}
}

func TestParseURLRefused(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://127.0.0.1/grey":                           "scheme must be mongodb",
		"mongo://127.0.0.1/grey":                              "scheme must be mongodb",
		"127.0.0.1:27017":                                     "scheme must be mongodb",
		"mongodb:///grey":                                     "names no host",
		"mongodb://h/grey?w=0":                                "unacknowledged",
		"mongodb://h/grey?w=majorty":                          "tag sets are not supported",
		"mongodb://h/grey?w=-1":                               "out of range",
		"mongodb://h/grey?w=51":                               "out of range",
		"mongodb://h/grey?w=1&w=2":                            "given 2 times",
		"mongodb://h/grey?readConcernLevel=snapshot":          "snapshot needs transactions",
		"mongodb://h/grey?readConcernLevel=strong":            "not supported",
		"mongodb://h/grey?retryWrites=maybe":                  "not true or false",
		"mongodb://h/gr.ey":                                   "does not allow",
		"mongodb://h/" + strings.Repeat("d", 64):              "longer than 63",
		"mongodb://h/grey?collection=":                        "empty",
		"mongodb://h/grey?collection=a$b":                     "does not allow",
		"mongodb://h/grey?collection=system.x":                "reserved",
		"mongodb://h/grey?connectTimeoutMS=abc":               "connecttimeoutms",
		"mongodb://u:hunter2@h:99999/grey":                    "port",
		"mongodb://h/grey?bogusOption=1":                      "unknown option",
		"mongodb://h/grey#frag":                               "fragment",
		"mongodb://h/grey?w=majority&W=1":                     "given twice",
		"mongodb://h/gr%zzey":                                 "badly escaped",
		"mongodb://h/grey?appName=a b":                        "spaces",
		"mongodb://u:hunter2@h/grey?w=0":                      "unacknowledged",
		"mongodb+srv://u:hunter2@h1,h2/grey?journal=true&w=0": "journal=true",
	} {
		_, err := mongoarchive.ParseURL(raw)
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != "url" {
			t.Errorf("%s: %v, want invalid_argument on url", raw, err)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
			t.Errorf("%s: %v, want it to say %q", raw, err, want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", raw, err)
		}
	}
}

// FuzzParseURL: ParseURL never panics, refuses with InvalidArgument on
// url, never echoes a password, and what it accepts keeps the archive's
// guarantees (an acknowledged write concern, a supported read concern, a
// valid database and collection).
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"mongodb://127.0.0.1:27017/grey",
		"mongodb://u:p@h1,h2:27018/db?replicaSet=rs&w=2&readConcernLevel=local&collection=c",
		"mongodb+srv://u:p@cluster.example.invalid/grey?retryWrites=false",
		"mongodb://h/grey?w=0",
		"mongodb://h/?collection=system.x",
		"mongodb:///tmp%2Fmongodb.sock/grey",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := mongoarchive.ParseURL(raw)
		if err != nil {
			var ge *greyerr.Error
			if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != "url" {
				t.Fatalf("%q: %v, want invalid_argument on url", raw, err)
			}
			return
		}
		if c.Scheme != "mongodb" && c.Scheme != "mongodb+srv" {
			t.Fatalf("%q: scheme %q", raw, c.Scheme)
		}
		if c.WriteConcern == "0" || c.WriteConcern == "" || c.ReadConcern == "snapshot" || c.ReadConcern == "" {
			t.Fatalf("%q: accepted w=%q readConcernLevel=%q", raw, c.WriteConcern, c.ReadConcern)
		}
		if c.Database == "" || c.Collection == "" || strings.ContainsAny(c.Database, "/\\. \"$") || strings.Contains(c.Collection, "$") {
			t.Fatalf("%q: database %q collection %q", raw, c.Database, c.Collection)
		}
	})
}
