// Command greyctl is the command-line client of Grey: it submits, inspects,
// cancels and waits for tasks, manages tenants and their quotas, reports
// usage and cost, shows the cluster, and runs benchmarks. It is built only on
// the client package.
//
// Exit codes: 0 on success; 1 when a command fails, or when a task it waited
// for failed or was cancelled, or a benchmark had failures; 2 on usage errors.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
