// Package quorumarchive is the quorum archive driver (quorum://): N child
// archives of any scheme that hold the same records, written and read with
// the seed's quorum levels (one, majority, all) set separately for writes
// and reads.
//
// A record's version is its task's Raft index (Task.Index): the higher is
// newer. Ties between different contents are broken by the finish time,
// then by the SHA-256 of the record's JSON (the greater wins), so every
// node picks the same winner.
//
// Writes go to every replica in parallel and succeed once the write quorum
// acknowledged them; the replicas that had not answered yet go on in the
// background. A write that cannot reach its quorum fails with an error
// that names each failed replica and says on which replicas the records
// were written. Reads ask every replica and return once the read quorum
// answered (an answer may be "not found"); the
// newest version among the answers wins, and replicas that answered with
// an older version or none are repaired in the background (read repair,
// through a bounded queue: when it is full, a repair is left to
// anti-entropy). List merges the answers (task id descending, the newest
// version of each id); Count is the greatest count among the answers.
//
// Anti-entropy runs every anti_entropy period, and on demand
// (Driver.AntiEntropy). A full pass walks every tenant of every replica
// (archive.TenantLister), pages through the tenant's records on all
// replicas at once (a merge by task id) and writes the newest version to
// the replicas that lack it or hold an older one. The passes between full
// ones (every anti_entropy_full) are incremental: they check only the
// records a replica is known to have missed (a write it failed) and the
// deletes not made everywhere, one read per replica each. Records finished before the retention horizon
// (OpenOptions.Retention) are never copied back. A record deleted (Delete)
// while a replica was down is remembered by the process that deleted it
// (a bounded set of tombstones) and deleted there when anti-entropy meets
// it; after a restart such a record may be copied back by repair.
//
// Every child must implement archive.TenantLister and archive.Deleter for
// anti-entropy and Delete; the driver's Tenants and Delete need them too.
//
// As sets a **quorumarchive.Driver to the driver itself (to run a pass,
// read the replicas' state or register the metrics).
package quorumarchive
