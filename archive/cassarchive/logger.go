package cassarchive

import (
	"context"
	"log/slog"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// slogger passes gocql's log lines to the driver's slog.Logger: its
// errors and warnings (a host down, a failed reconnect, a DNS failure of
// a contact point) at Warn, the rest at Debug.
type slogger struct{ log *slog.Logger }

var _ gocql.StructuredLogger = slogger{}

func (l slogger) write(level slog.Level, msg string, fields []gocql.LogField) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]any, 0, 2*len(fields))
	for _, f := range fields {
		attrs = append(attrs, f.Name, f.Value.String())
	}
	l.log.Log(context.Background(), level, "gocql: "+msg, attrs...)
}

func (l slogger) Error(msg string, fields ...gocql.LogField) { l.write(slog.LevelWarn, msg, fields) }
func (l slogger) Warning(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelWarn, msg, fields)
}
func (l slogger) Info(msg string, fields ...gocql.LogField)  { l.write(slog.LevelDebug, msg, fields) }
func (l slogger) Debug(msg string, fields ...gocql.LogField) { l.write(slog.LevelDebug, msg, fields) }
