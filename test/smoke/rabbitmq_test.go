package smoke

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/internal/testenv"
)

func TestRabbitMQ(t *testing.T) {
	url := testenv.ServiceURL(t, "rabbitmq")
	ctx := ctxFor(t, 30*time.Second)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("grey-smoke-"+uniq(), false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	body := []byte("hello grey " + uniq())
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.Name, true, false,
		amqp.Publishing{ContentType: "text/plain", Body: body, DeliveryMode: amqp.Persistent})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := conf.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publisher confirm: ok=%v err=%v", ok, err)
	}
	msgs, err := ch.ConsumeWithContext(ctx, q.Name, "", false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if string(m.Body) != string(body) {
			t.Fatalf("got %q, want %q", m.Body, body)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("no message consumed")
	}
}
