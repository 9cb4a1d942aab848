// Package archivedrivers is the one list of archive drivers Grey's binaries
// link: greyd archives through them and greyctl migrates and rebalances
// archives offline with the same ones. The core (archive) imports no
// driver; a new driver is one import and one line here.
package archivedrivers

import (
	"fmt"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/cassarchive"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/archive/mongoarchive"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/quorumarchive"
	"github.com/grey-distributed/grey/archive/shardarchive"
)

// Registry returns a registry holding every archive driver of this build.
// Composite drivers (sharded, quorum) are registered last: they open their
// children through the same registry.
func Registry() (*archive.Registry, error) {
	reg := archive.NewRegistry()
	for _, register := range []func(*archive.Registry) error{
		memarchive.Register,   // mem:// (tests, throw-away nodes)
		pgarchive.Register,    // postgres:// and postgresql://
		cassarchive.Register,  // cassandra://host[:port]/keyspace?hosts=&consistency=...
		mongoarchive.Register, // mongodb:// and mongodb+srv://
		// Composites last: they open their members through reg.
		quorumarchive.Register, // quorum://?replica=URL&...&write=&read=
		shardarchive.Register,  // sharded://?shard=URL&...
	} {
		if err := register(reg); err != nil {
			return nil, fmt.Errorf("archive drivers: %w", err)
		}
	}
	return reg, nil
}
