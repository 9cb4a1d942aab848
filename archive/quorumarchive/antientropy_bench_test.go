package quorumarchive_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/quorumarchive"
)

// BenchmarkAntiEntropy compares a full pass with an incremental one over
// three in-memory replicas holding 50,000 records of 10 tenants, after a
// replica missed 100 of them: the full pass reads every record of every
// replica, the incremental one the 100 it is told of. The records/op
// metric is what each pass checked.
//
//	go test -run '^$' -bench AntiEntropy ./archive/quorumarchive/
func BenchmarkAntiEntropy(b *testing.B) {
	for _, c := range []struct {
		name string
		full time.Duration
	}{{"full", -1}, {"incremental", 0}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := ctxT(b)
			d, mems := memQuorum(b, 3, quorumarchive.Config{FullEvery: c.full})
			defer d.Close()
			at := time.Now().Add(-time.Hour)
			for ten := range 10 {
				tenant := archivetest.Tenant("ae" + strconv.Itoa(ten))
				recs := records(b, tenant, 5000, at)
				for i := 0; i < len(recs); i += 1000 {
					if err := d.Upsert(ctx, tenant, recs[i:min(i+1000, len(recs))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := d.AntiEntropy(ctx); err != nil { // the driver's first pass is full
				b.Fatal(err)
			}
			var checked int64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				mems[2].SetUnavailable(errors.New("down"))
				tenant := archivetest.Tenant("ae0")
				if err := d.Upsert(ctx, tenant, records(b, tenant, 100, time.Now().Add(-time.Minute))); err != nil {
					b.Fatal(err)
				}
				mems[2].SetUnavailable(nil)
				b.StartTimer()
				res, err := d.AntiEntropy(ctx)
				if err != nil || res.Divergent != 100 {
					b.Fatalf("pass: %+v, %v; want the 100 missed records repaired", res, err)
				}
				checked += res.Records
			}
			b.ReportMetric(float64(checked)/float64(b.N), "records/op")
		})
	}
}
