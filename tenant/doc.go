// Package tenant holds what Grey knows about tenants: the Tenant record and
// its Quota (replicated in Raft), usage counters, and the price table that
// turns usage into cost. The state store keeps tenants and usage; this
// package validates them and does the arithmetic.
package tenant
