package mongoarchive

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// Defaults the driver puts in a URL that does not set them.
const (
	// DefaultDatabase is the database when the URL's path names none.
	DefaultDatabase = "grey"
	// DefaultCollection holds the records when the URL has no collection
	// knob; its schema marker lives in DefaultCollection + "_meta".
	DefaultCollection = "archive_tasks"
	// DefaultWriteConcern is w when the URL does not set it.
	DefaultWriteConcern = "majority"
	// DefaultReadConcern is readConcernLevel when the URL does not set it.
	DefaultReadConcern = "majority"
	// DefaultServerSelectionTimeout replaces the driver's 30 s: a store
	// that does not answer is reported (and retried by the Store) within
	// seconds.
	DefaultServerSelectionTimeout = 5 * time.Second
	// DefaultConnectTimeout replaces the driver's 30 s for the same reason.
	DefaultConnectTimeout = 5 * time.Second
)

// maxW bounds a numeric write concern (MongoDB replica sets have at most
// 50 members).
const maxW = 50

// Config is an archive URL as the driver reads it.
type Config struct {
	// Scheme is mongodb or mongodb+srv.
	Scheme string
	// URI is the connection string handed to the MongoDB driver: the URL
	// with the Grey knobs taken out and the defaults put in.
	URI string
	// Database holds the archive's collections.
	Database string
	// Collection holds the records (the collection knob).
	Collection string
	// WriteConcern is the w in effect: "majority" or a number of members.
	WriteConcern string
	// ReadConcern is the readConcernLevel in effect.
	ReadConcern string
	// RetryWrites is the retryWrites in effect.
	RetryWrites bool
	// MaxPoolSizeSet says the URL sets maxPoolSize (it then wins over
	// OpenOptions.PoolSize).
	MaxPoolSizeSet bool
}

// readConcerns are the read concern levels the archive accepts. snapshot
// is refused: it needs transactions or snapshot sessions, which the driver
// does not use.
var readConcerns = map[string]bool{"local": true, "available": true, "majority": true, "linearizable": true}

// ParseURL reads an archive URL,
// mongodb[+srv]://[user:pass@]host[:port][,host...]/[DATABASE][?options],
// without any I/O (an SRV name is resolved when the driver opens). The
// query holds MongoDB's own connection-string options plus one Grey knob,
// collection. Absent options take the archive's defaults: w=majority,
// readConcernLevel=majority, retryWrites=true, serverSelectionTimeoutMS
// and connectTimeoutMS 5000. Errors are InvalidArgument on field url and
// never show a password.
func ParseURL(raw string) (Config, error) {
	red := archive.Redact(raw)
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, greyerr.Invalid("url", "MongoDB archive URL %s: "+format, append([]any{red}, args...)...)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != connstring.SchemeMongoDB && scheme != connstring.SchemeMongoDBSRV) {
		return bad("the scheme must be mongodb:// or mongodb+srv://")
	}
	if strings.ContainsAny(raw, "\x00\r\n\t ") {
		return bad("it holds spaces or control characters")
	}
	hostPath, rawQuery, _ := strings.Cut(rest, "?")
	if i := strings.Index(hostPath, "#"); i >= 0 {
		return bad("it has a fragment")
	}
	hosts, path, _ := strings.Cut(hostPath, "/")
	hosts0 := hosts // with the credentials
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		hosts = hosts[at+1:]
	}
	if hosts == "" {
		return bad("it names no host")
	}
	cfg := Config{Scheme: scheme, Database: DefaultDatabase, Collection: DefaultCollection}
	if path != "" {
		db, err := url.PathUnescape(path)
		if err != nil {
			return bad("the database name is badly escaped")
		}
		if err := validName("database", db, `/\. "$*<>:|?`); err != nil {
			return bad("%v", err)
		}
		cfg.Database = db
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return bad("the query is badly escaped")
	}
	// MongoDB's option names are case-insensitive.
	opts := map[string][]string{}
	keys := map[string]string{}
	for k, v := range q {
		lk := strings.ToLower(k)
		if _, dup := opts[lk]; dup {
			return bad("option %s is given twice", k)
		}
		opts[lk], keys[lk] = v, k
	}
	one := func(lk string) (string, bool, error) {
		v, ok := opts[lk]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", true, greyerr.Invalid("url", "option %s is given %d times", keys[lk], len(v))
		}
		return v[0], true, nil
	}
	if c, set, err := one("collection"); err != nil {
		return bad("%v", err)
	} else if set {
		if err := validName("collection", c, "$"); err != nil {
			return bad("%v", err)
		}
		if strings.HasPrefix(c, "system.") {
			return bad("collection %q is in MongoDB's reserved system. namespace", c)
		}
		cfg.Collection = c
		delete(q, keys["collection"])
	}
	if len(cfg.Database)+1+len(cfg.Collection)+len("_meta") > 255 {
		return bad("database and collection names are too long together")
	}
	w, set, err := one("w")
	if err != nil {
		return bad("%v", err)
	}
	if !set {
		w = DefaultWriteConcern
		q.Set("w", w)
	}
	if err := validW(w); err != nil {
		return bad("%v", err)
	}
	cfg.WriteConcern = w
	if j, set, _ := one("journal"); set && j == "true" && w == "0" {
		return bad("journal=true needs an acknowledged write concern")
	}
	rc, set, err := one("readconcernlevel")
	if err != nil {
		return bad("%v", err)
	}
	if !set {
		rc = DefaultReadConcern
		q.Set("readConcernLevel", rc)
	}
	if !readConcerns[rc] {
		return bad("readConcernLevel %q is not supported by the archive (use local, available, majority or linearizable; snapshot needs transactions, which the archive does not use)", rc)
	}
	cfg.ReadConcern = rc
	rw, set, err := one("retrywrites")
	if err != nil {
		return bad("%v", err)
	}
	cfg.RetryWrites = true
	if set {
		b, err := strconv.ParseBool(rw)
		if err != nil {
			return bad("retryWrites %q is not true or false", rw)
		}
		cfg.RetryWrites = b
	} else {
		q.Set("retryWrites", "true")
	}
	if _, set := opts["serverselectiontimeoutms"]; !set {
		q.Set("serverSelectionTimeoutMS", strconv.FormatInt(DefaultServerSelectionTimeout.Milliseconds(), 10))
	}
	if _, set := opts["connecttimeoutms"]; !set {
		q.Set("connectTimeoutMS", strconv.FormatInt(DefaultConnectTimeout.Milliseconds(), 10))
	}
	_, cfg.MaxPoolSizeSet = opts["maxpoolsize"]
	cfg.URI = scheme + "://" + hosts0 + "/" + path + "?" + q.Encode()
	if scheme == connstring.SchemeMongoDB {
		// The driver's own parser checks the rest (hosts, ports, every
		// other option); for mongodb+srv it would resolve the name, so
		// that waits for Open.
		cs, err := connstring.ParseAndValidate(cfg.URI)
		if err != nil {
			return bad("%s", redactErr(err, raw))
		}
		if len(cs.UnknownOptions) > 0 {
			names := make([]string, 0, len(cs.UnknownOptions))
			for k := range cs.UnknownOptions {
				names = append(names, k)
			}
			return bad("unknown option(s) %s", strings.Join(names, ", "))
		}
	}
	return cfg, nil
}

// validW accepts the write concerns under which an acknowledged write is
// a stored record: majority or a number of members from 1. w=0
// (unacknowledged) would let the relay advance past records that never
// arrived; replica-set tag sets are not supported (a misspelt majority
// would pass as a tag and fail every write).
func validW(w string) error {
	if w == "majority" {
		return nil
	}
	n, err := strconv.Atoi(w)
	switch {
	case err != nil:
		return greyerr.Invalid("url", "write concern w=%q is not supported (use majority or a number of members; tag sets are not supported)", w)
	case n == 0:
		return greyerr.Invalid("url", "write concern w=0 (unacknowledged) is not supported: the archive must know a record is stored")
	case n < 0 || n > maxW:
		return greyerr.Invalid("url", "write concern w=%d is out of range (1 to %d, or majority)", n, maxW)
	}
	return nil
}

// validName checks a database or collection name: not empty, at most 63
// bytes, valid UTF-8 without NUL or any of forbidden.
func validName(what, s, forbidden string) error {
	switch {
	case s == "":
		return greyerr.Invalid("url", "the %s name is empty", what)
	case len(s) > 63:
		return greyerr.Invalid("url", "the %s name is longer than 63 bytes", what)
	case !utf8Valid(s) || strings.ContainsRune(s, 0) || strings.ContainsAny(s, forbidden):
		return greyerr.Invalid("url", "the %s name %q holds a character MongoDB does not allow (%s)", what, s, forbidden)
	}
	return nil
}
