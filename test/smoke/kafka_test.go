package smoke

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/internal/testenv"
)

func TestKafka(t *testing.T) {
	broker := strings.TrimPrefix(testenv.ServiceURL(t, "kafka"), "kafka://")
	ctx := ctxFor(t, 60*time.Second)
	topic := "grey-smoke-" + uniq()

	admin, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	defer adm.DeleteTopics(ctx, topic)

	prod, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := "task-" + uniq()
	if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ConsumerGroup("grey-smoke-"+uniq()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record consumed: %v", err)
		}
		for _, e := range fs.Errors() {
			t.Logf("fetch error (retrying): %v", e.Err)
		}
		var got []string
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) > 0 {
			if got[0] != want {
				t.Fatalf("got %q, want %q", got[0], want)
			}
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			return
		}
	}
}
