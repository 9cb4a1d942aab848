// Package cassarchive is the Apache Cassandra driver of the archive port
// (archive.Driver), for cassandra:// URLs, over
// github.com/apache/cassandra-gocql-driver/v2.
//
// Data model (one table per query, no ALLOW FILTERING, no secondary
// index):
//
//   - tasks, partitioned by (tenant_id, bucket) and clustered by id
//     descending. The bucket is the task id's UUIDv7 time divided by the
//     keyspace's bucket width (a day unless chosen otherwise when the
//     keyspace was made), so the id alone names its partition: Get is one
//     partition read, and a tenant's newest-first pages walk its buckets
//     from the newest, each read in clustering order (task id descending,
//     which is submission order). Filters the key cannot serve (status,
//     kind, finish time, labels) are applied by the driver while it pages
//     through the slim columns of a bucket; only matching rows are then
//     read whole.
//   - tenant_buckets, one partition per tenant listing its buckets newest
//     first: what List, Count, Tenants and the retention walk.
//   - proofs, by (tenant_id, proof_id): a proof envelope covers a batch
//     of tasks, so one several tasks of a batch share is stored once and
//     they name it; one a single task names rides in its row.
//   - settings, schema_migrations and schema_lock: the keyspace's bucket
//     width, the applied migrations, and the lightweight-transaction lock
//     under which they are applied.
//
// The keyspace and tables are made by versioned migrations (Migrate, or
// OpenOptions.Migrate) applied under a lock taken with a lightweight
// transaction (INSERT ... IF NOT EXISTS, released with DELETE ... IF
// owner = ?), each step followed by a wait for schema agreement. A keyspace
// whose schema is newer than the binary, or a replication the cluster
// cannot satisfy, is refused with FailedPrecondition naming both sides.
//
// Record tables use TimeWindowCompactionStrategy, and with
// OpenOptions.Retention every write carries a TTL of the time its task
// has left, so expired data leaves by dropping whole SSTables. Reads and
// writes use their own consistency levels (LOCAL_QUORUM by default); the
// host selection is token-aware over a DC-aware round robin when local_dc
// is set. As sets a **gocql.Session once the driver has connected (it
// connects at first use, so greyd starts while Cassandra is down).
//
// docs/ARCHIVE.md ("Cassandra") lists the URL's knobs, the consistency
// each setting gives, and a worked example.
package cassarchive
