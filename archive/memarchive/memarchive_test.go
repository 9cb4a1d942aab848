package memarchive_test

import (
	"errors"
	"testing"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
)

func harness() archivetest.Harness {
	return archivetest.Harness{
		Open: func(t testing.TB) archive.Driver { return memarchive.NewDriver() },
		Unreachable: func(t testing.TB) archive.Driver {
			d := memarchive.NewDriver()
			d.SetUnavailable(errors.New("connection refused (simulated)"))
			return d
		},
	}
}

func TestConformance(t *testing.T) {
	archivetest.Run(t, harness())
}

func BenchmarkArchive(b *testing.B) {
	archivetest.Bench(b, harness())
}
