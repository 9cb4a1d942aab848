package config

import (
	"bytes"
	"testing"
)

// FuzzLoad feeds arbitrary file contents to LoadBytes: it must not panic, a
// returned Config must validate, and its effective YAML must load back to
// the same effective YAML.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(fullYAML))
	f.Add([]byte("node:\n  id: ${ID:-n1}\n  labels: {a: \"$${X}\"}\n"))
	f.Add([]byte("tasks:\n  retry:\n    base_delay: 5x\n"))
	lookup := env("ID", "n9", "GREY_ZONE", "z", "EMPTY", "")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadBytes(data, "fuzz.yaml", lookup)
		if err != nil {
			if c != nil {
				t.Fatalf("LoadBytes returned a Config and an error: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config does not validate: %v", err)
		}
		if c.HTTP.AdminToken != "" {
			return // printed masked, so it does not load back
		}
		var out bytes.Buffer
		if err := c.WriteEffective(&out); err != nil {
			t.Fatalf("WriteEffective: %v", err)
		}
		c2, err := LoadBytes(out.Bytes(), "effective.yaml", nil)
		if err != nil {
			t.Fatalf("effective config does not load: %v\n%s", err, out.Bytes())
		}
		var out2 bytes.Buffer
		if err := c2.WriteEffective(&out2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), out2.Bytes()) {
			t.Fatalf("effective config changed on reload:\n%s\n---\n%s", out.Bytes(), out2.Bytes())
		}
	})
}
