package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// origin is where a loaded value came from: a file line or an environment
// variable, and the value it had then (a later flag assignment changes the
// value, so the origin no longer applies).
type origin struct {
	file   string // set for a file after the first (LoadFiles)
	seenIn string // the file the value was decoded from
	line   int
	env    string
	val    any
}

// Load reads the configuration: Default, then the YAML file at path (if
// path is not ""), then the GREY_* environment overrides, then Validate.
// lookupEnv is os.LookupEnv in production; nil means an empty environment.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return LoadBytes(data, path, lookupEnv)
}

// LoadFiles is Load for several files, decoded in order into one
// configuration: greyd --config grey.yaml --integrations
// grey-integrations.yaml. A key set in a later file replaces the earlier
// value (a mapping such as cloud.cost_tags is replaced whole, not merged);
// errors name the file a value came from. Empty paths are skipped.
func LoadFiles(paths []string, lookupEnv func(string) (string, bool)) (*Config, error) {
	var docs []Document
	for _, p := range paths {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		docs = append(docs, Document{Name: p, Data: data})
	}
	return LoadDocuments(docs, lookupEnv)
}

// Document is one configuration file's name and contents.
type Document struct {
	// Name is the file's name, used in error messages.
	Name string
	// Data is the file's contents.
	Data []byte
}

// LoadDocuments is LoadFiles for contents already in memory.
func LoadDocuments(docs []Document, lookupEnv func(string) (string, bool)) (*Config, error) {
	if len(docs) == 0 {
		return LoadBytes(nil, "", lookupEnv)
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	c := Default()
	c.origins = map[string]origin{}
	for _, d := range docs {
		if len(bytes.TrimSpace(d.Data)) == 0 {
			continue
		}
		if err := c.decode(d.Data, d.Name, lookupEnv); err != nil {
			return nil, err
		}
	}
	for k, o := range c.origins {
		if o.seenIn != docs[0].Name {
			o.file = o.seenIn
			c.origins[k] = o
		}
	}
	if err := c.applyEnv(lookupEnv); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", docs[0].Name, err)
	}
	return c, nil
}

// LoadBytes is Load for file contents already in memory; name is used in
// error messages.
//
// In the text, ${VAR} is replaced by the variable's value (an unset variable
// is an error), ${VAR:-default} by the value or, if it is unset or empty, by
// default (which ends at the first "}"), and $${ by a literal "${". Lines
// whose first non-blank character is '#' are comments and left alone; a
// reference in a trailing comment is expanded. A value containing a line
// break is an error. YAML tags (!!str, !custom) are rejected; anchors and
// aliases work.
func LoadBytes(data []byte, name string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if name == "" {
		name = "<config>"
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	c := Default()
	c.origins = map[string]origin{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := c.decode(data, name, lookupEnv); err != nil {
			return nil, err
		}
	}
	if err := c.applyEnv(lookupEnv); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// decode expands data and decodes it strictly into c, recording the line of
// every key it sets.
func (c *Config) decode(data []byte, name string, lookupEnv func(string) (string, bool)) error {
	text, err := expand(data, name, lookupEnv)
	if err != nil {
		return err
	}
	var f *ast.File
	if err := safely(func() (err error) { f, err = parser.ParseBytes(text, 0); return err }); err != nil {
		return decodeError(name, err, nil)
	}
	var body ast.Node
	for _, doc := range f.Docs {
		switch {
		case doc.Body == nil:
		case body != nil:
			return nodeErrorIn(name, doc.Body, "only one YAML document is allowed")
		default:
			body = doc.Body
		}
	}
	if body == nil {
		return nil
	}
	keys := newKeyIndex()
	if err := safely(func() error { ast.Walk(keys, body); return keys.err }); err != nil {
		return decodeError(name, err, keys.tokens)
	}
	if err := notBuiltError(name, keys); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(nil), yaml.Strict())
	if err := safely(func() error { return dec.DecodeFromNode(body, c) }); err != nil {
		return decodeError(name, err, keys.tokens)
	}
	leaves := leafValues(c)
	for key, line := range keys.lines {
		if v, ok := leaves[key]; ok {
			c.origins[key] = origin{line: line, val: v.Interface(), seenIn: name}
		}
	}
	return nil
}

// safely runs f, turning a panic in go-yaml (it has panicked on malformed
// input, e.g. "key: ! " where a list is expected) into an error.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-yaml failed on malformed input: %v", r)
		}
	}()
	return f()
}

// keyIndex is an ast.Visitor that maps tokens to the key path of the
// outermost node holding them, and key paths to their lines. It also
// rejects YAML tags (!foo, !!str): a config file has no use for them, and
// go-yaml's decoder panics on some (a tagged scalar where a list belongs).
type keyIndex struct {
	tokens map[*token.Token]string
	lines  map[string]int
	cols   map[string]int
	err    error
}

// newKeyIndex returns an empty keyIndex.
func newKeyIndex() *keyIndex {
	return &keyIndex{tokens: map[*token.Token]string{}, lines: map[string]int{}, cols: map[string]int{}}
}

// Visit records n.
func (k *keyIndex) Visit(n ast.Node) ast.Visitor {
	if t, ok := n.(*ast.TagNode); ok && k.err == nil {
		k.err = nodeError(n, fmt.Sprintf("YAML tags such as %s are not supported (quote the value to make it a string)", t.Start.Value), nil)
	}
	path := keyOf(n.GetPath())
	if tk := n.GetToken(); tk != nil {
		if _, ok := k.tokens[tk]; !ok {
			k.tokens[tk] = path
		}
	}
	if mv, ok := n.(*ast.MappingValueNode); ok && mv.Key != nil && mv.Key.GetToken() != nil {
		k.tokens[mv.Key.GetToken()] = path
		k.lines[path] = mv.Key.GetToken().Position.Line
		k.cols[path] = mv.Key.GetToken().Position.Column
	}
	return k
}

// decodeError turns a go-yaml error into a positioned *Error.
func decodeError(name string, err error, tokens map[*token.Token]string) error {
	var ce *Error
	if errors.As(err, &ce) {
		ce.File = name
		return ce
	}
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		tk := ye.GetToken()
		msg := ye.GetMessage()
		var te *yaml.TypeError
		if errors.As(err, &te) && te.SrcType != nil && te.DstType != nil {
			msg = fmt.Sprintf("cannot use %s as %s", kindName(te.SrcType), kindName(te.DstType))
		}
		return &Error{File: name, Line: tk.Position.Line, Column: max(tk.Position.Column, 1), Key: tokens[tk], Msg: msg, Err: err}
	}
	return fmt.Errorf("config %s: %w", name, err)
}

// kindName names t the way a YAML author thinks of it.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		if t.ConvertibleTo(reflect.TypeFor[int64]()) {
			return "an integer"
		}
		return t.String()
	}
}

// nodeErrorIn is nodeError for the file name.
func nodeErrorIn(name string, node ast.Node, msg string) error {
	e := nodeError(node, msg, nil)
	e.File, e.Column = name, max(e.Column, 1)
	return e
}

// expand replaces ${VAR}, ${VAR:-default} and $${ in data (see LoadBytes).
func expand(data []byte, name string, lookupEnv func(string) (string, bool)) ([]byte, error) {
	if !bytes.Contains(data, []byte("${")) {
		return data, nil
	}
	var out bytes.Buffer
	var errs []error
	fail := func(line, col int, env, format string, args ...any) {
		errs = append(errs, &Error{File: name, Line: line, Column: col, Env: env, Msg: fmt.Sprintf(format, args...)})
	}
	for n, l := range lines(data) {
		if isComment(l) {
			out.Write(l)
			continue
		}
		for i := 0; i < len(l); {
			switch {
			case bytes.HasPrefix(l[i:], []byte("$${")):
				out.WriteString("${")
				i += 3
			case bytes.HasPrefix(l[i:], []byte("${")):
				end := bytes.IndexByte(l[i:], '}')
				if end < 0 {
					fail(n+1, i+1, "", "unterminated ${ (write $${ for a literal \"${\")")
					out.Write(l[i:])
					i = len(l)
					continue
				}
				ref := string(l[i+2 : i+end])
				v, def, hasDef := strings.Cut(ref, ":-")
				val, ok := lookupEnv(v)
				switch {
				case !validVarName(v):
					fail(n+1, i+1, "", "invalid environment variable name %q in ${%s}", v, ref)
				case hasDef && val == "":
					val = def
				case !ok:
					fail(n+1, i+1, v, "environment variable %s is not set (write ${%s:-default} to give a default)", v, v)
				}
				if strings.ContainsAny(val, "\r\n") {
					fail(n+1, i+1, v, "environment variable %s contains a line break", v)
				}
				out.WriteString(val)
				i += end + 1
			default:
				out.WriteByte(l[i])
				i++
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out.Bytes(), nil
}

// escape is the inverse of expand for text written by WriteEffective.
func escape(data []byte) []byte {
	var out bytes.Buffer
	for _, l := range lines(data) {
		if !isComment(l) {
			l = bytes.ReplaceAll(l, []byte("${"), []byte("$${"))
		}
		out.Write(l)
	}
	return out.Bytes()
}

// lines splits data into lines, each keeping its "\n".
func lines(data []byte) [][]byte {
	return bytes.SplitAfter(data, []byte("\n"))
}

// isComment reports whether l is a comment line.
func isComment(l []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(l, " \t"), []byte("#"))
}

// validVarName reports whether s is a shell-style variable name.
func validVarName(s string) bool {
	for i, r := range s {
		if r != '_' && !('A' <= r && r <= 'Z') && !('a' <= r && r <= 'z') && (i == 0 || !('0' <= r && r <= '9')) {
			return false
		}
	}
	return s != ""
}

// applyEnv applies the GREY_* overrides listed in the package doc.
func (c *Config) applyEnv(lookupEnv func(string) (string, bool)) error {
	p := &c.Monitoring.Prometheus
	str := func(dst *string) func(string) error {
		return func(v string) error { *dst = v; return nil }
	}
	overrides := []struct {
		env  string
		keys []string
		set  func(string) error
	}{
		{"GREY_NODE_ID", []string{"node.id"}, str(&c.Node.ID)},
		{"GREY_DATA_DIR", []string{"node.data_dir"}, str(&c.Node.DataDir)},
		{"GREY_HTTP_ADDR", []string{"http.addr"}, str(&c.HTTP.Addr)},
		{"GREY_RAFT_ADDR", []string{"raft.addr"}, str(&c.Raft.Addr)},
		{"GREY_LOG_LEVEL", []string{"log.level"}, str(&c.Log.Level)},
		{"GREY_LOG_FORMAT", []string{"log.format"}, str(&c.Log.Format)},
		{"GREY_METRICS_ADDR", []string{"monitoring.prometheus.host", "monitoring.prometheus.port"}, func(v string) error {
			host, port, err := net.SplitHostPort(v)
			if err != nil {
				return fmt.Errorf("want host:port: %w", err)
			}
			n, err := strconv.Atoi(port)
			if err != nil {
				return fmt.Errorf("port %q is not a number", port)
			}
			p.Host, p.Port = host, n
			return nil
		}},
		{"GREY_PROMETHEUS_PORT", []string{"monitoring.prometheus.port"}, func(v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want a port number, 1 to 65535")
			}
			p.Port = n
			return nil
		}},
		{"GREY_AUTH_MODE", []string{"auth.mode"}, func(v string) error { c.Auth.Mode = ParseAuthModes(v); return nil }},
		{"GREY_OTEL_ENDPOINT", []string{"monitoring.opentelemetry.endpoint"}, str(&c.Monitoring.OpenTelemetry.Endpoint)},
		{"GREY_OTEL_PROTOCOL", []string{"monitoring.opentelemetry.protocol"}, str(&c.Monitoring.OpenTelemetry.Protocol)},
		{"GREY_IAM_PROVIDER", []string{"auth.oidc.provider"}, str(&c.Auth.OIDC.Provider)},
		{"AWS_REGION", []string{"cloud.region"}, str(&c.Cloud.Region)},
		{"GOOGLE_PROJECT", []string{"cloud.project"}, str(&c.Cloud.Project)},
		{"AZURE_SUBSCRIPTION_ID", []string{"cloud.subscription_id"}, str(&c.Cloud.SubscriptionID)},
		{"GREY_PG_URL", []string{"database.postgres.url"}, func(v string) error { c.Database.Postgres.URL = SecretURL(v); return nil }},
		{"GREY_PG_MIGRATE_URL", []string{"database.postgres.migrate_url"}, func(v string) error { c.Database.Postgres.MigrateURL = SecretURL(v); return nil }},
		{"GREY_CASSANDRA_HOSTS", []string{"database.cassandra.hosts"}, func(v string) error { c.Database.Cassandra.Hosts = splitBrokers(v); return nil }},
		{"GREY_CASSANDRA_PASSWORD", []string{"database.cassandra.password"}, func(v string) error { c.Database.Cassandra.Password = Secret(v); return nil }},
		{"GREY_MONGO_URL", []string{"database.mongodb.url"}, func(v string) error { c.Database.MongoDB.URL = SecretURL(v); return nil }},
		{"GREY_KAFKA_BROKERS", []string{"events.kafka.brokers"}, func(v string) error { c.Events.Kafka.Brokers = splitBrokers(v); return nil }},
		{"GREY_MODEL_REGISTRY", []string{"ai.model_registry"}, str(&c.AI.ModelRegistry)},
		{"GREY_INFERENCE_TIMEOUT", []string{"ai.inference_timeout"}, func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("want a duration such as 30s")
			}
			c.AI.InferenceTimeout = Duration(d)
			return nil
		}},
		{"GREY_RABBITMQ_URL", []string{"events.rabbitmq.url"}, func(v string) error { c.Events.RabbitMQ.URL = SecretURL(v); return nil }},
	}
	if c.origins == nil {
		c.origins = map[string]origin{}
	}
	var errs []error
	var leaves map[string]reflect.Value
	for _, o := range overrides {
		v, ok := lookupEnv(o.env)
		if !ok {
			continue
		}
		if err := o.set(v); err != nil {
			errs = append(errs, &Error{Key: o.keys[0], Env: o.env, Msg: fmt.Sprintf("invalid value %q: %v", v, err), Err: err})
			continue
		}
		if leaves == nil {
			leaves = leafValues(c)
		}
		for _, k := range o.keys {
			c.origins[k] = origin{env: o.env, val: leaves[k].Interface()}
		}
	}
	return errors.Join(errs...)
}

// leafValues maps every key path of c to its (addressable) field, descending
// into nested structs but not into maps or lists.
func leafValues(c *Config) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(v.Field(i), prefix+name+".")
				continue
			}
			out[prefix+name] = v.Field(i)
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}
