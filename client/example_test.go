package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// Submit a task and wait for its outcome. (No output: it needs a server.)
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:8080,http://127.0.0.1:8081", client.WithTenant("acme"))
	if err != nil {
		log.Fatal(err)
	}
	t, err := c.Submit(ctx, task.Spec{
		Kind:           "echo",
		Payload:        json.RawMessage(`{"msg":"hello"}`),
		IdempotencyKey: "hello-1",
	})
	if greyerr.Is(err, greyerr.ResourceExhausted) {
		var ge *greyerr.Error
		errors.As(err, &ge)
		log.Fatalf("over quota, retry in %s", ge.RetryAfter)
	}
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t, err = c.Wait(ctx, t.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Status, string(t.Result))
}

// Follow the tenant's finished tasks.
func ExampleClient_Watch() {
	c, err := client.New("http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	opts := client.WatchOptions{Status: []task.Status{task.Completed, task.Failed, task.Cancelled}}
	err = c.Watch(context.Background(), opts, func(t *task.Task) error {
		fmt.Println(t.ID, t.Status)
		return nil
	})
	log.Fatal(err)
}

// Page through all pending tasks of one kind.
func ExampleClient_ListAll() {
	c, err := client.New("http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	for t, err := range c.ListAll(context.Background(), client.ListOptions{Status: []task.Status{task.Pending}, Kind: "resize"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(t.ID)
	}
}

// Run a remote worker for the kind "resize".
func ExampleClient_NewWorker() {
	c, err := client.New("http://127.0.0.1:8080", client.WithToken("secret"))
	if err != nil {
		log.Fatal(err)
	}
	w := c.NewWorker(worker.Options{WorkerID: "resize-1", Concurrency: 4})
	w.HandleFunc("resize", func(ctx context.Context, j *worker.Job) (any, error) {
		var in struct{ URL string }
		if err := j.Decode(&in); err != nil {
			return nil, err // a bad payload fails the task at once
		}
		if in.URL == "" {
			return nil, worker.Permanent(errors.New("url is required"))
		}
		return map[string]string{"thumbnail": in.URL + "?w=128"}, nil
	})
	log.Fatal(w.Run(context.Background()))
}
