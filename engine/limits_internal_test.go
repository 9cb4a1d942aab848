package engine

import (
	"testing"
	"time"

	"github.com/grey-distributed/grey/tenant"
)

// Tokens taken for a submit the state machine then refused are given back:
// the tenant can submit again at once.
func TestLimiterGivesBackRefusedTokens(t *testing.T) {
	var ls limiters
	q := tenant.Quota{SubmitRate: 0.001, SubmitBurst: 2} // no refill during the test
	now := time.Now()
	ok, _, giveBack := ls.allow("acme", q, 2, now)
	if !ok {
		t.Fatal("first submit of the burst refused")
	}
	if ok, wait, _ := ls.allow("acme", q, 1, now); ok || wait <= 0 {
		t.Fatalf("over the burst: ok %v wait %s; want a wait", ok, wait)
	}
	giveBack()
	if ok, _, _ := ls.allow("acme", q, 2, now); !ok {
		t.Fatal("tokens of a refused submit were not given back")
	}
	if ok, wait, _ := ls.allow("acme", q, 3, now); ok || wait >= 0 {
		t.Fatalf("a batch over the burst: ok %v wait %s; want never (-1)", ok, wait)
	}
}
