// Package mongoarchive is the MongoDB driver of the archive port
// (archive.Driver), for mongodb:// and mongodb+srv:// URLs, over the
// official driver (go.mongodb.org/mongo-driver/v2). It also runs on
// FerretDB, with the limits docs/ARCHIVE.md ("MongoDB") lists.
//
// Records live in one collection (archive_tasks in database grey unless
// the URL says otherwise), one document per (tenant, task id) with _id
// "tenant/id". The driver creates its indexes when it first reaches the
// server: tenant+id unique (descending id: List's order), tenant + finish
// time + id (finish-time ranges), finish time (retention across tenants)
// and, where the server has TTL indexes, a TTL index on the record's
// expiry (finish + archive.retention). A schema marker in the
// <collection>_meta collection makes a binary refuse a store written by a
// newer layout.
//
// Writes are unordered bulk writes under the URL's write concern
// (majority unless set) with retryable writes on; reads use its read
// concern (majority unless set). Every query names the tenant. Finish
// times are stored as microseconds since the epoch, so filters and
// retention are exact to the microsecond (a BSON date holds milliseconds).
// As accepts a **mongo.Client or a **mongo.Collection (the records').
package mongoarchive
