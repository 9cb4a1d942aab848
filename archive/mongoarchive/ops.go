package mongoarchive

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	gojson "github.com/goccy/go-json"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// doc is a record as stored: the fields the archive filters and sorts by,
// and the task's JSON (without payload and result) with payload, result
// and proof envelope as strings, byte for byte as written.
type doc struct {
	// Key is tenant + "/" + task id (tenant ids hold no "/").
	Key    string `bson:"_id"`
	Tenant string `bson:"tenant"`
	ID     string `bson:"id"`
	// Fin is the finish time in microseconds since the Unix epoch (a BSON
	// date holds milliseconds only; the archive's filters are exact to the
	// microsecond).
	Fin int64 `bson:"fin"`
	// Exp is when the TTL index removes the record (finish + retention);
	// absent when the archive keeps records forever.
	Exp    *time.Time `bson:"exp,omitempty"`
	Status string     `bson:"status"`
	Kind   string     `bson:"kind"`
	// Labels are the task's required labels, each the JSON array [key,
	// value] (label keys may hold dots, which MongoDB field names cannot
	// carry safely).
	Labels []string `bson:"lbl,omitempty"`
	// Version is the task's Raft index (the record version).
	Version int64   `bson:"ver"`
	Task    string  `bson:"task"`
	Payload *string `bson:"payload,omitempty"`
	Result  *string `bson:"result,omitempty"`
	Proof   *string `bson:"proof,omitempty"`
	// Archived is when this copy was written.
	Archived time.Time `bson:"at"`
}

// readDoc is what a read decodes.
type readDoc struct {
	Task    string  `bson:"task"`
	Payload *string `bson:"payload"`
	Result  *string `bson:"result"`
	Proof   *string `bson:"proof"`
}

var readProjection = bson.D{{Key: "_id", Value: 0}, {Key: "task", Value: 1}, {Key: "payload", Value: 1}, {Key: "result", Value: 1}, {Key: "proof", Value: 1}}

func key(tenant, id string) string { return tenant + "/" + id }

// micros returns t in microseconds since the epoch, rounded up: a bound
// between two microseconds keeps the records a nanosecond-exact bound
// would (stored times are whole microseconds).
func micros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// labelEntry encodes one required label for the lbl array.
func labelEntry(k, v string) string {
	b, _ := json.Marshal([2]string{k, v})
	return string(b)
}

func (d *Driver) toDoc(tenant string, r archive.Record, now time.Time) (doc, error) {
	t := r.Task
	if t == nil || t.FinishedAt == nil {
		return doc{}, greyerr.Invalid("task", "a record needs a finished task")
	}
	if t.TenantID != tenant {
		return doc{}, greyerr.Invalid("tenant_id", "record of task %s belongs to another tenant", t.ID)
	}
	// encoding/json would compact and HTML-escape a RawMessage: payload
	// and result are stored on their own, byte for byte.
	bare := *t
	bare.Payload, bare.Result = nil, nil
	tj, err := gojson.Marshal(&bare)
	if err != nil {
		return doc{}, greyerr.Invalid("task", "task %s does not encode as JSON: %v", t.ID, err)
	}
	out := doc{
		Key: key(tenant, t.ID), Tenant: tenant, ID: t.ID,
		Fin: t.FinishedAt.UnixMicro(), Status: string(t.Status), Kind: t.Kind,
		Version: int64(t.Index), Task: string(tj), Archived: now,
	}
	if d.retention > 0 {
		exp := t.FinishedAt.Add(d.retention).UTC()
		out.Exp = &exp
	}
	if l := t.Labels(); len(l) > 0 {
		out.Labels = make([]string, 0, len(l))
		for k, v := range l {
			out.Labels = append(out.Labels, labelEntry(k, v))
		}
		slices.Sort(out.Labels)
	}
	size := len(tj) + 512
	for i, b := range [3]json.RawMessage{t.Payload, t.Result, r.Proof} {
		if len(b) == 0 {
			continue
		}
		field := [3]string{"payload", "result", "proof"}[i]
		if !json.Valid(b) {
			return doc{}, greyerr.Invalid(field, "the %s of task %s is not JSON", field, t.ID)
		}
		s := string(b)
		size += len(s)
		switch i {
		case 0:
			out.Payload = &s
		case 1:
			out.Result = &s
		case 2:
			out.Proof = &s
		}
	}
	for _, l := range out.Labels {
		size += len(l)
	}
	if size > maxDocument {
		return doc{}, &greyerr.Error{Code: greyerr.InvalidArgument, Field: "task",
			Message: "task " + t.ID + " is too large for one MongoDB document (16 MiB with its payload, result and proof)"}
	}
	return out, nil
}

func decode(rd readDoc) (archive.Record, error) {
	var t task.Task
	if err := gojson.Unmarshal([]byte(rd.Task), &t); err != nil {
		return archive.Record{}, greyerr.New(greyerr.Internal, "archive: a stored task does not decode: %v", err)
	}
	if rd.Payload != nil {
		t.Payload = json.RawMessage(*rd.Payload)
	}
	if rd.Result != nil {
		t.Result = json.RawMessage(*rd.Result)
	}
	r := archive.Record{Task: &t}
	if rd.Proof != nil {
		r.Proof = json.RawMessage(*rd.Proof)
	}
	return r, nil
}

// Upsert implements archive.Driver: an unordered bulk insert of the
// records, then an unordered bulk of replace-one upserts (by _id: tenant
// and id) for those already stored. Inserting first is what keeps
// FerretDB fast (its upsert looks each document up by a scan of the
// collection, its insert leans on the unique index); on MongoDB it costs
// a second round trip only for a re-delivered batch. A record written
// twice in one batch is written as its last copy.
func (d *Driver) Upsert(ctx context.Context, tenant string, recs []archive.Record) error {
	if len(recs) == 0 {
		return nil
	}
	last := make(map[string]int, len(recs))
	for i, r := range recs {
		if r.Task == nil {
			return greyerr.Invalid("task", "record %d has no task", i)
		}
		last[r.Task.ID] = i
	}
	now := time.Now().UTC()
	docs := make([]doc, 0, len(last))
	for i, r := range recs {
		if last[r.Task.ID] != i {
			continue
		}
		dc, err := d.toDoc(tenant, r, now)
		if err != nil {
			return err
		}
		docs = append(docs, dc)
	}
	if err := d.ensureReady(ctx); err != nil {
		return err
	}
	ctx, end := d.span(ctx, "bulkWrite", d.tasks)
	err := d.upsert(ctx, tenant, docs)
	end(err)
	return err
}

func (d *Driver) upsert(ctx context.Context, tenant string, docs []doc) error {
	inserts := make([]mongo.WriteModel, len(docs))
	for i := range docs {
		inserts[i] = mongo.NewInsertOneModel().SetDocument(docs[i])
	}
	_, err := d.tasks.BulkWrite(ctx, inserts, options.BulkWrite().SetOrdered(false))
	if err == nil {
		return nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return classify(ctx, err, "archive upsert")
	}
	var replaces []mongo.WriteModel
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && we.Code != 11001 {
			return classify(ctx, err, "archive upsert")
		}
		if we.Index < 0 || we.Index >= len(docs) {
			return greyerr.New(greyerr.Internal, "archive upsert: the server named write %d of %d", we.Index, len(docs))
		}
		dc := docs[we.Index]
		replaces = append(replaces, mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: dc.Key}, {Key: "tenant", Value: tenant}}).
			SetReplacement(dc).SetUpsert(true))
	}
	_, err = d.tasks.BulkWrite(ctx, replaces, options.BulkWrite().SetOrdered(false))
	return classify(ctx, err, "archive upsert")
}

// Get implements archive.Driver: one find by _id (tenant and id).
func (d *Driver) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	if err := d.ensureReady(ctx); err != nil {
		return archive.Record{}, err
	}
	ctx, end := d.span(ctx, "find", d.tasks)
	var rd readDoc
	err := d.tasks.FindOne(ctx, bson.D{{Key: "_id", Value: key(tenant, id)}, {Key: "tenant", Value: tenant}},
		options.FindOne().SetProjection(readProjection)).Decode(&rd)
	if errors.Is(err, mongo.ErrNoDocuments) {
		end(nil)
		return archive.Record{}, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	err = classify(ctx, err, "archive get")
	end(err)
	if err != nil {
		return archive.Record{}, err
	}
	return decode(rd)
}

// filter returns the query document of a tenant's records matching f;
// every query the driver makes names the tenant.
func filter(tenant string, f archive.Filter) bson.D {
	q := bson.D{{Key: "tenant", Value: tenant}}
	switch len(f.Statuses) {
	case 0:
	case 1:
		q = append(q, bson.E{Key: "status", Value: string(f.Statuses[0])})
	default:
		st := make(bson.A, len(f.Statuses))
		for i, s := range f.Statuses {
			st[i] = string(s)
		}
		q = append(q, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: st}}})
	}
	if f.Kind != "" {
		q = append(q, bson.E{Key: "kind", Value: f.Kind})
	}
	if !f.FinishedFrom.IsZero() || !f.FinishedTo.IsZero() {
		r := bson.D{}
		if !f.FinishedFrom.IsZero() {
			r = append(r, bson.E{Key: "$gte", Value: micros(f.FinishedFrom)})
		}
		if !f.FinishedTo.IsZero() {
			r = append(r, bson.E{Key: "$lt", Value: micros(f.FinishedTo)})
		}
		q = append(q, bson.E{Key: "fin", Value: r})
	}
	if len(f.Labels) > 0 {
		ls := make([]string, 0, len(f.Labels))
		for k, v := range f.Labels {
			ls = append(ls, labelEntry(k, v))
		}
		slices.Sort(ls)
		all := make(bson.A, len(ls))
		for i, l := range ls {
			all[i] = l
		}
		q = append(q, bson.E{Key: "lbl", Value: bson.D{{Key: "$all", Value: all}}})
	}
	return q
}

// List implements archive.Driver: the tenant's records by id descending
// after q.Before (keyset paging on the tenant_id index, no skip).
func (d *Driver) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	if err := d.ensureReady(ctx); err != nil {
		return nil, err
	}
	f := filter(tenant, q.Filter)
	if q.Before != "" {
		f = append(f, bson.E{Key: "id", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	ctx, end := d.span(ctx, "find", d.tasks)
	out, err := d.list(ctx, f, q.Limit)
	end(err)
	return out, err
}

func (d *Driver) list(ctx context.Context, f bson.D, limit int) ([]archive.Record, error) {
	cur, err := d.tasks.Find(ctx, f, options.Find().
		SetSort(bson.D{{Key: "id", Value: -1}}).SetLimit(int64(limit)).SetBatchSize(int32(min(limit, 1000))).
		SetProjection(readProjection))
	if err != nil {
		return nil, classify(ctx, err, "archive list")
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	out := make([]archive.Record, 0, min(limit, 128))
	for cur.Next(ctx) {
		var rd readDoc
		if err := cur.Decode(&rd); err != nil {
			return nil, classify(ctx, err, "archive list: decode")
		}
		r, err := decode(rd)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := cur.Err(); err != nil {
		return nil, classify(ctx, err, "archive list")
	}
	return out, nil
}

// Count implements archive.Driver.
func (d *Driver) Count(ctx context.Context, tenant string, f archive.Filter) (int64, error) {
	if err := d.ensureReady(ctx); err != nil {
		return 0, err
	}
	ctx, end := d.span(ctx, "aggregate", d.tasks)
	n, err := d.tasks.CountDocuments(ctx, filter(tenant, f))
	err = classify(ctx, err, "archive count")
	end(err)
	return n, err
}

// DeleteBefore implements archive.Driver: one delete of every record
// finished before before (the fin index), all tenants; it returns how
// many went.
func (d *Driver) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	if err := d.ensureReady(ctx); err != nil {
		return 0, err
	}
	ctx, end := d.span(ctx, "delete", d.tasks)
	res, err := d.tasks.DeleteMany(ctx, bson.D{{Key: "fin", Value: bson.D{{Key: "$lt", Value: micros(before)}}}})
	err = classify(ctx, err, "archive retention")
	end(err)
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}

// Tenants implements archive.TenantLister: the distinct tenants, sorted
// (an aggregation grouping by tenant over the tenant_id index; FerretDB's
// distinct refuses the maxTimeMS the driver sends under a deadline).
func (d *Driver) Tenants(ctx context.Context) ([]string, error) {
	if err := d.ensureReady(ctx); err != nil {
		return nil, err
	}
	ctx, end := d.span(ctx, "aggregate", d.tasks)
	out, err := d.tenants(ctx)
	end(err)
	return out, err
}

func (d *Driver) tenants(ctx context.Context) ([]string, error) {
	cur, err := d.tasks.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$sort", Value: bson.D{{Key: "tenant", Value: 1}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$tenant"}}}},
	})
	if err != nil {
		return nil, classify(ctx, err, "archive tenants")
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var out []string
	for cur.Next(ctx) {
		if s, ok := cur.Current.Lookup("_id").StringValueOK(); ok {
			out = append(out, s)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, classify(ctx, err, "archive tenants")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// deleteChunk bounds the ids of one delete command.
const deleteChunk = 1000

// Delete implements archive.Deleter: deletes by _id (tenant and id), in
// chunks of 1000 ids.
func (d *Driver) Delete(ctx context.Context, tenant string, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if err := d.ensureReady(ctx); err != nil {
		return 0, err
	}
	ctx, end := d.span(ctx, "delete", d.tasks)
	var n int64
	var err error
	for chunk := range slices.Chunk(ids, deleteChunk) {
		keys := make(bson.A, len(chunk))
		for i, id := range chunk {
			keys[i] = key(tenant, id)
		}
		var res *mongo.DeleteResult
		res, err = d.tasks.DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
		if err = classify(ctx, err, "archive delete"); err != nil {
			break
		}
		n += res.DeletedCount
	}
	end(err)
	return n, err
}
