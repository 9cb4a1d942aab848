package scheduler

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The typed heaps give items in order under any mix of pushes and pops.
func TestHeapsOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var h readyHeap
		var th timeHeap
		var want []readyItem
		var wantT []timedItem
		base := time.Unix(1_700_000_000, 0)
		for op := 0; op < 300; op++ {
			if len(want) == 0 || r.IntN(3) > 0 {
				it := readyItem{prio: r.IntN(4), id: strconv.Itoa(r.IntN(1000)), attempt: op}
				pushReadyItem(&h, it)
				want = append(want, it)
				ti := timedItem{at: base.Add(time.Duration(r.IntN(1000)) * time.Millisecond), id: it.id}
				pushTimed(&th, ti)
				wantT = append(wantT, ti)
				continue
			}
			slices.SortStableFunc(want, func(a, b readyItem) int {
				switch {
				case a.before(b):
					return -1
				case b.before(a):
					return 1
				}
				return 0
			})
			got := popReady(&h)
			if got.prio != want[0].prio || got.id != want[0].id {
				t.Fatalf("round %d: popped %+v, want %+v", round, got, want[0])
			}
			// Equal keys may come out in either order: drop the one popped.
			for i := range want {
				if want[i] == got {
					want = slices.Delete(want, i, i+1)
					break
				}
			}
			slices.SortStableFunc(wantT, func(a, b timedItem) int { return a.at.Compare(b.at) })
			gt := popTimed(&th)
			if !gt.at.Equal(wantT[0].at) {
				t.Fatalf("round %d: popped time %v, want %v", round, gt.at, wantT[0].at)
			}
			for i := range wantT {
				if wantT[i] == gt {
					wantT = slices.Delete(wantT, i, i+1)
					break
				}
			}
		}
	}
}
