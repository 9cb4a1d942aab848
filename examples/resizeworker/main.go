// Command resizeworker is the README's worker example: a remote worker that
// registers a handler for a custom kind and runs it against a Grey cluster.
package main

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/worker"
)

func main() {
	c, err := client.New("http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	w := c.NewWorker(worker.Options{Concurrency: 8})
	w.HandleFunc("resize", func(ctx context.Context, j *worker.Job) (any, error) {
		var in struct {
			URL   string `json:"url"`
			Width int    `json:"width"`
		}
		if err := j.Decode(&in); err != nil {
			return nil, err // malformed payload: a permanent failure
		}
		return map[string]any{"url": in.URL, "width": in.Width, "resized": true}, nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil { // on SIGTERM: stop leasing, finish, report
		log.Fatal(err)
	}
}
