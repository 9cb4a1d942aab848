package shardarchive

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/url"
	"slices"
	"strings"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// NameParam is the query parameter of a child URL that names the shard
// explicitly. It is removed from the URL before the child opens.
const NameParam = "name"

// ShardURL is one shard of a sharded archive URL.
type ShardURL struct {
	// ID is the shard's identity, the input of placement: the child URL's
	// name= parameter, else the child URL without its user info and query
	// (scheme://host/path).
	ID string
	// URL is the child URL the shard opens, without name=.
	URL string
	// Retiring marks a shard being removed (retire= in a sharded:// URL,
	// --retire of greyctl archive rebalance): it owns no tenant, so
	// nothing is written to it; reads still find what it holds, and a
	// rebalance moves all of it to the owners.
	Retiring bool
}

// Identity returns the placement identity of a child URL and the URL its
// driver opens (name= removed). A password, a user name, a query knob
// (consistency, pool size) or the order of the shards never changes
// where a tenant lives; moving a shard to another host or database does,
// unless the shard carries a name=.
func Identity(childURL string) (ShardURL, error) {
	u, err := url.Parse(childURL)
	if err != nil || u.Scheme == "" {
		return ShardURL{}, greyerr.Invalid("shard", "%s is not an archive URL", archive.Redact(childURL))
	}
	q := u.Query()
	name := q.Get(NameParam)
	if q.Has(NameParam) {
		if strings.TrimSpace(name) == "" {
			return ShardURL{}, greyerr.Invalid("shard", "%s has an empty name=", archive.Redact(childURL))
		}
		q.Del(NameParam)
		u.RawQuery = q.Encode()
	}
	open := u.String()
	if name != "" {
		return ShardURL{ID: name, URL: open}, nil
	}
	id := url.URL{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Host), Path: u.Path, Opaque: u.Opaque}
	return ShardURL{ID: id.String(), URL: open}, nil
}

// ParseURL returns the shards of a sharded:// URL (shard=<escaped child
// URL>, repeated), then its retiring shards (retire=<escaped child URL>,
// repeated). At least one shard is needed, and no two may share an
// identity (give each a name= then).
func ParseURL(rawURL string) ([]ShardURL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !strings.EqualFold(u.Scheme, Scheme) {
		return nil, greyerr.Invalid("archive", "%s is not a %s:// URL", archive.Redact(rawURL), Scheme)
	}
	q := u.Query()
	for k := range q {
		if k != "shard" && k != RetireParam && k != AllowMisplacedParam && k != RefreshParam {
			return nil, greyerr.Invalid("archive", "%s:// has no query parameter %q (shard, %s, %s, %s)", Scheme, k, RetireParam, AllowMisplacedParam, RefreshParam)
		}
	}
	return List(q["shard"], q[RetireParam])
}

// Shards returns the shards of a list of child URLs, checking that there is
// at least one and that identities are unique.
func Shards(childURLs []string) ([]ShardURL, error) { return List(childURLs, nil) }

// List returns the owning shards of childURLs, then the retiring shards
// of retiring (marked Retiring): at least one owning shard, and every
// identity unique across both lists.
func List(childURLs, retiring []string) ([]ShardURL, error) {
	if len(childURLs) == 0 {
		return nil, greyerr.Invalid("shard", "a sharded archive needs at least one shard=<URL>")
	}
	out := make([]ShardURL, 0, len(childURLs)+len(retiring))
	seen := map[string]bool{}
	for n, c := range append(slices.Clone(childURLs), retiring...) {
		s, err := Identity(c)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(strings.SplitN(s.URL, ":", 2)[0], Scheme) {
			return nil, greyerr.Invalid("shard", "a shard cannot itself be a %s:// archive", Scheme)
		}
		if seen[s.ID] {
			return nil, greyerr.Invalid("shard", "two shards have the identity %s: add name=<unique name> to each child URL (a retiring shard cannot also be a shard)", s.ID)
		}
		seen[s.ID] = true
		s.Retiring = n >= len(childURLs)
		out = append(out, s)
	}
	return out, nil
}

// Owners returns how many of shards own tenants: the shards before the
// first retiring one (List puts every retiring shard last).
func Owners(shards []ShardURL) int {
	for i, s := range shards {
		if s.Retiring {
			return i
		}
	}
	return len(shards)
}

// IDs returns the identities of shards, in order.
func IDs(shards []ShardURL) []string {
	ids := make([]string, len(shards))
	for i, s := range shards {
		ids[i] = s.ID
	}
	return ids
}

// Owner returns the index in ids of the shard that owns tenant, by
// rendezvous (highest random weight) hashing: every shard scores
// SHA-256(id, tenant) and the highest score wins. The result depends on the
// set of ids, not their order; adding a shard moves to it only the tenants
// it now wins (about 1/N of them) and moves nothing between the others;
// removing one moves only its tenants. ids must not be empty.
func Owner(ids []string, tenant string) int {
	best, bestScore := -1, uint64(0)
	for i, id := range ids {
		s := score(id, tenant)
		if best < 0 || s > bestScore || (s == bestScore && id > ids[best]) {
			best, bestScore = i, s
		}
	}
	return best
}

func score(id, tenant string) uint64 {
	h := sha256.New()
	// Length-prefixed so that ("ab","c") and ("a","bc") differ.
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(id)))
	h.Write(n[:])
	h.Write([]byte(id))
	h.Write([]byte(tenant))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// Misplaced is a tenant with records on a shard that does not own it.
type Misplaced struct {
	// Tenant is the tenant's id.
	Tenant string `json:"tenant"`
	// From is the index of the shard holding the records, To the owner's.
	From int `json:"from"`
	To   int `json:"to"`
	// FromID and ToID are the shards' identities.
	FromID string `json:"from_id"`
	ToID   string `json:"to_id"`
}

// FindMisplaced lists, with Tenants() of every shard (listers[i] is the
// shard of ids[i]), the tenants held by a shard other than their owner,
// sorted by tenant then shard. The first owners of ids own tenants; the
// rest are retiring shards, where every tenant is misplaced (owners <= 0
// or more than len(ids): every shard owns). It also returns every shard's
// tenant list. Both the start check of a sharded archive and greyctl
// archive rebalance use it. A shard that cannot list its tenants fails
// it, naming the shard.
func FindMisplaced(ctx context.Context, ids []string, owners int, listers []archive.TenantLister) ([]Misplaced, [][]string, error) {
	if len(ids) != len(listers) || len(ids) == 0 {
		return nil, nil, greyerr.Invalid("shard", "FindMisplaced needs one lister per shard")
	}
	if owners <= 0 || owners > len(ids) {
		owners = len(ids)
	}
	held := make([][]string, len(ids))
	for i, l := range listers {
		ts, err := l.Tenants(ctx)
		if err != nil {
			return nil, nil, shardErr(ids[i], "list tenants", err)
		}
		held[i] = ts
	}
	var out []Misplaced
	for i, ts := range held {
		for _, t := range ts {
			if o := Owner(ids[:owners], t); o != i {
				out = append(out, Misplaced{Tenant: t, From: i, To: o, FromID: ids[i], ToID: ids[o]})
			}
		}
	}
	slices.SortFunc(out, func(a, b Misplaced) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return a.From - b.From
	})
	return out, held, nil
}

// shardErr names the shard in err, keeping its code.
func shardErr(id, op string, err error) error {
	return greyerr.Within(greyerr.Internal, err, "shard %s: %s", id, op)
}
