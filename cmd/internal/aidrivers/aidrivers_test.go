package aidrivers

import (
	"slices"
	"testing"
)

func TestRegistryHasTheRuntimeDrivers(t *testing.T) {
	reg, err := Registry()
	if err != nil {
		t.Fatal(err)
	}
	have := reg.Schemes()
	for _, s := range []string{"mem", "python", "oip+http", "oip+https", "tfserving+http", "tfserving+https"} {
		if !slices.Contains(have, s) {
			t.Errorf("scheme %q is not registered (have %v)", s, have)
		}
	}
}
