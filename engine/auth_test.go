package engine_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

func as(subject string, grants ...auth.Grant) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{Subject: subject, Method: auth.MethodAPIKey, Grants: grants})
}

// TestLeasePrincipalSurvivesRestart: the lease records the principal's
// subject in the Raft log and the snapshot, so after a restart (as after a
// leader change) only that principal may report the attempt.
func TestLeasePrincipalSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, snapshot := range []bool{false, true} {
		n := greytest.NewNode(t, engine.Config{})
		tk := submit(t, n.Engine, "a", task.Spec{Kind: "noop"})[0]
		w1 := as("apikey:w1", auth.Grant{Tenant: "a", Role: auth.RoleWorker})
		w2 := as("apikey:w2", auth.Grant{Tenant: "a", Role: auth.RoleWorker})
		lr, err := n.Engine.Lease(w1, &worker.LeaseRequest{WorkerID: "w", Kinds: []string{"noop"}, Max: 1})
		if err != nil || len(lr.Tasks) != 1 || lr.Tasks[0].Principal != "apikey:w1" {
			t.Fatalf("lease: %v %+v (the assignment names the principal, for the proof)", err, lr)
		}
		n.Restart(snapshot)
		got := n.Store.Lookup(tk.ID)
		if got.Lease == nil || got.Lease.Principal != "apikey:w1" || got.Attempts[0].Principal != "apikey:w1" {
			t.Fatalf("snapshot=%v: lease %+v after restart", snapshot, got.Lease)
		}
		report := &worker.CompleteRequest{WorkerID: "w", Reports: []worker.Report{{TaskID: tk.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`1`)}}}
		cr, err := n.Engine.Complete(w2, report)
		if err != nil || cr.Results[0].Accepted {
			t.Fatalf("w2's report of w1's lease: %v %+v", err, cr)
		}
		if got := n.Store.Lookup(tk.ID); got.Status != task.Leased {
			t.Fatalf("task %s after a refused report", got.Status)
		}
		cr, err = n.Engine.Complete(w1, report)
		if err != nil || !cr.Results[0].Accepted {
			t.Fatalf("w1's report: %v %+v", err, cr)
		}
	}
}

func TestLeaseScope(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	submit(t, n.Engine, "b", task.Spec{Kind: "noop"})
	viewer := as("v", auth.Grant{Tenant: "a", Role: auth.RoleViewer})
	if _, err := n.Engine.Lease(viewer, &worker.LeaseRequest{WorkerID: "w", Kinds: []string{"noop"}, Max: 1}); greyerr.CodeOf(err) != greyerr.PermissionDenied {
		t.Fatalf("viewer lease: %v", err)
	}
	wa := as("wa", auth.Grant{Tenant: "a", Role: auth.RoleWorker})
	lr, err := n.Engine.Lease(wa, &worker.LeaseRequest{WorkerID: "w", Kinds: []string{"noop"}, Max: 10})
	if err != nil || len(lr.Tasks) != 0 {
		t.Fatalf("worker of a leased b's task: %v %+v", err, lr)
	}
	// The engine's own callers (no principal) lease everything.
	lr, err = n.Engine.Lease(context.Background(), &worker.LeaseRequest{WorkerID: "w", Kinds: []string{"noop"}, Max: 10})
	if err != nil || len(lr.Tasks) != 1 {
		t.Fatalf("in-process lease: %v %+v", err, lr)
	}
}

// TestWorkerRegistersItsOwnNode: a worker principal may register a
// worker-only node and its key, and refresh it, but not join as a server
// nor take over a node id another principal registered.
func TestWorkerRegistersItsOwnNode(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	w1 := as("apikey:w1", auth.Grant{Tenant: "a", Role: auth.RoleWorker})
	w2 := as("apikey:w2", auth.Grant{Tenant: "a", Role: auth.RoleWorker})
	admin := as("apikey:admin", auth.Grant{Tenant: auth.AllTenants, Role: auth.RoleAdmin})
	join := func(ctx context.Context, id, role string) error {
		_, err := n.Engine.Join(ctx, &engine.JoinRequest{NodeID: id, Role: role, RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:2"})
		return err
	}
	if err := join(w1, "gpu-1", "worker"); err != nil {
		t.Fatalf("worker registers its node: %v", err)
	}
	if err := join(w1, "gpu-1", "worker"); err != nil {
		t.Fatalf("worker refreshes its node: %v", err)
	}
	if err := join(w2, "gpu-1", "worker"); greyerr.CodeOf(err) != greyerr.PermissionDenied {
		t.Fatalf("another worker takes gpu-1 over: %v", err)
	}
	if err := join(w1, "s9", "server"); greyerr.CodeOf(err) != greyerr.PermissionDenied {
		t.Fatalf("worker joins as a server: %v", err)
	}
	if got := n.Store.Node("gpu-1"); got == nil || got.RegisteredBy != "apikey:w1" {
		t.Fatalf("node record %+v", got)
	}
	if err := join(admin, "gpu-1", "worker"); err != nil {
		t.Fatalf("admin re-registers: %v", err)
	}
}
