package auth

import (
	"slices"
	"sort"
)

// Permission is one thing a request may need to be allowed to do. The set
// is closed: every API route names one of these (api/routes.go), and the
// roles table below is the only place that says who holds which.
type Permission string

// The permissions. Tenant-scoped ones are checked against the request's
// tenant; cluster-scoped ones (IsCluster) against the whole cluster.
const (
	// PermTaskRead reads a tenant's tasks, results, proofs and streams.
	PermTaskRead Permission = "task.read"
	// PermTaskSubmit submits tasks (one or a batch) to a tenant.
	PermTaskSubmit Permission = "task.submit"
	// PermTaskCancel cancels a tenant's task.
	PermTaskCancel Permission = "task.cancel"
	// PermTaskReplay re-executes a finished task to check its result.
	PermTaskReplay Permission = "task.replay"
	// PermModuleRead lists and downloads a tenant's wasm modules.
	PermModuleRead Permission = "module.read"
	// PermModuleWrite uploads a tenant's wasm modules.
	PermModuleWrite Permission = "module.write"
	// PermModelRead lists, describes and downloads a tenant's AI models
	// (the model registry).
	PermModelRead Permission = "model.read"
	// PermModelWrite pushes and deletes a tenant's AI models and sets and
	// deletes their aliases.
	PermModelWrite Permission = "model.write"
	// PermWorkerLease leases, heartbeats and reports tasks (of the tenants
	// and kinds the principal is granted the worker role for).
	PermWorkerLease Permission = "worker.lease"
	// PermClusterRead reads cluster facts: members, leader, the nodes'
	// public proof keys. Every role holds it.
	PermClusterRead Permission = "cluster.read"
	// PermClusterAdmin changes membership (join, remove a node).
	PermClusterAdmin Permission = "cluster.admin"
	// PermTenantAdmin creates, reads, changes and deletes tenants and reads
	// every tenant's usage.
	PermTenantAdmin Permission = "tenant.admin"
	// PermSnapshot saves and restores the cluster state.
	PermSnapshot Permission = "cluster.snapshot"
	// PermAPIKeyManage manages a tenant's service-account API keys
	// (create, list, revoke). Who may create which key is decided further
	// by apikey.MayCreate: only an admin creates admin keys.
	PermAPIKeyManage Permission = "apikey.manage"
	// PermDebug reads profiles (pprof) of a node.
	PermDebug Permission = "cluster.debug"
	// PermNodeRegister registers a worker-only node and its proof-signing
	// key (POST /cluster/join with role worker). A non-admin may register
	// only node ids it registered first; joining as a server needs
	// PermClusterAdmin.
	PermNodeRegister Permission = "node.register"
)

// Permissions lists every permission.
var Permissions = []Permission{
	PermTaskRead, PermTaskSubmit, PermTaskCancel, PermTaskReplay,
	PermModuleRead, PermModuleWrite, PermModelRead, PermModelWrite, PermWorkerLease,
	PermClusterRead, PermClusterAdmin, PermTenantAdmin, PermSnapshot, PermDebug,
	PermNodeRegister, PermAPIKeyManage,
}

// Valid reports whether p is one of Permissions.
func (p Permission) Valid() bool { return slices.Contains(Permissions, p) }

// IsCluster reports whether p concerns the whole cluster rather than one
// tenant. Cluster permissions other than PermClusterRead are held only
// through a grant on AllTenants.
func (p Permission) IsCluster() bool {
	switch p {
	case PermClusterRead, PermClusterAdmin, PermTenantAdmin, PermSnapshot, PermDebug:
		return true
	}
	return false
}

// roleTable is THE role → permission table. Nothing else in Grey decides
// what a role may do.
var roleTable = map[Role][]Permission{
	RoleAdmin: Permissions,
	RoleOperator: {
		PermTaskRead, PermTaskSubmit, PermTaskCancel, PermTaskReplay,
		PermModuleRead, PermModuleWrite, PermModelRead, PermModelWrite, PermClusterRead, PermAPIKeyManage,
	},
	RoleViewer: {PermTaskRead, PermModuleRead, PermModelRead, PermClusterRead},
	RoleWorker: {PermWorkerLease, PermNodeRegister, PermModuleRead, PermModelRead, PermClusterRead},
}

// RolePermissions returns the permissions of role r (nil for an unknown
// role). The slice is shared: do not modify it.
func RolePermissions(r Role) []Permission { return roleTable[r] }

// Has reports whether role r holds permission p.
func (r Role) Has(p Permission) bool { return slices.Contains(roleTable[r], p) }

// grantCovers reports whether g gives p on tenant (tenant is ignored for
// cluster permissions).
func grantCovers(g Grant, p Permission, tenant string) bool {
	if !g.Role.Has(p) {
		return false
	}
	switch {
	case p == PermClusterRead:
		return true
	case p.IsCluster():
		return g.Tenant == AllTenants
	default:
		return g.Tenant == AllTenants || g.Tenant == tenant
	}
}

// Can reports whether the principal may do p on tenant (for a cluster
// permission, tenant is ignored). A nil principal may do nothing.
func (p *Principal) Can(perm Permission, tenant string) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if grantCovers(g, perm, tenant) {
			return true
		}
	}
	return false
}

// CanAny reports whether the principal holds perm on at least one tenant
// (or on the cluster).
func (p *Principal) CanAny(perm Permission) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if g.Role.Has(perm) && (!perm.IsCluster() || perm == PermClusterRead || g.Tenant == AllTenants) {
			return true
		}
	}
	return false
}

// AllTenantsGrant reports whether the principal holds a grant on every
// tenant (an admin, or the development principal).
func (p *Principal) AllTenantsGrant() bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if g.Tenant == AllTenants {
			return true
		}
	}
	return false
}

// Tenants returns the tenants the principal holds an explicit grant on,
// sorted, without AllTenants (see AllTenantsGrant).
func (p *Principal) Tenants() []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, g := range p.Grants {
		if g.Tenant != AllTenants && !slices.Contains(out, g.Tenant) {
			out = append(out, g.Tenant)
		}
	}
	sort.Strings(out)
	return out
}

// ActsFor reports whether the principal may act for tenant at all (any
// grant on it, or on AllTenants).
func (p *Principal) ActsFor(tenant string) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if g.Tenant == AllTenants || g.Tenant == tenant {
			return true
		}
	}
	return false
}

// WorkerKinds returns the task kinds the principal may lease from tenant:
// ok is false when it may lease none; kinds nil means every kind. Admin
// grants and worker grants without Kinds allow every kind.
func (p *Principal) WorkerKinds(tenant string) (kinds []string, ok bool) {
	if p == nil {
		return nil, false
	}
	all := false
	for _, g := range p.Grants {
		if !g.Role.Has(PermWorkerLease) || (g.Tenant != AllTenants && g.Tenant != tenant) {
			continue
		}
		ok = true
		if g.Role != RoleWorker || len(g.Kinds) == 0 {
			all = true
			continue
		}
		for _, k := range g.Kinds {
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	if all {
		return nil, ok
	}
	return kinds, ok
}

// LeaseScope is the set of (tenant, kind) pairs a principal may lease,
// precomputed once per lease call for the scheduler's hot loop.
type LeaseScope struct {
	anyKind map[string]bool            // tenant → every kind
	kinds   map[string]map[string]bool // tenant → kinds
	starAll bool                       // AllTenants, every kind
	star    map[string]bool            // AllTenants, these kinds
}

// LeaseScope returns what the principal may lease; nil when it may lease
// everything (the scheduler then skips the check).
func (p *Principal) LeaseScope() *LeaseScope {
	s := &LeaseScope{anyKind: map[string]bool{}, kinds: map[string]map[string]bool{}, star: map[string]bool{}}
	if p == nil {
		return s
	}
	for _, g := range p.Grants {
		if !g.Role.Has(PermWorkerLease) {
			continue
		}
		every := g.Role != RoleWorker || len(g.Kinds) == 0
		switch {
		case g.Tenant == AllTenants && every:
			s.starAll = true
		case g.Tenant == AllTenants:
			for _, k := range g.Kinds {
				s.star[k] = true
			}
		case every:
			s.anyKind[g.Tenant] = true
		default:
			if s.kinds[g.Tenant] == nil {
				s.kinds[g.Tenant] = map[string]bool{}
			}
			for _, k := range g.Kinds {
				s.kinds[g.Tenant][k] = true
			}
		}
	}
	if s.starAll {
		return nil
	}
	return s
}

// Allows reports whether a task of tenant and kind may be leased. A nil
// scope allows everything.
func (s *LeaseScope) Allows(tenant, kind string) bool {
	if s == nil {
		return true
	}
	return s.star[kind] || s.anyKind[tenant] || s.kinds[tenant][kind]
}

// Empty reports whether the scope allows nothing at all.
func (s *LeaseScope) Empty() bool {
	return s != nil && len(s.star) == 0 && len(s.anyKind) == 0 && len(s.kinds) == 0
}
