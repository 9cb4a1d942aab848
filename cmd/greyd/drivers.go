package main

import (
	"fmt"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/azblob"
	"github.com/grey-distributed/grey/blobstore/fileblob"
	"github.com/grey-distributed/grey/blobstore/gcsblob"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/blobstore/s3blob"
	"github.com/grey-distributed/grey/cmd/internal/aidrivers"
	"github.com/grey-distributed/grey/cmd/internal/archivedrivers"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/kafkaevents"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/events/rabbitevents"
)

// blobDrivers is the blob registry of this binary: the drivers greyd links
// are exactly the ones named here (the core packages import none; see
// internal/depcheck). A new driver is one import and one line.
func blobDrivers() (*blobstore.Registry, error) {
	reg := blobstore.NewRegistry()
	for _, register := range []func(*blobstore.Registry) error{
		fileblob.Register, // file:///abs/dir
		memblob.Register,  // mem:// (tests, throw-away nodes)
		s3blob.Register,   // s3://bucket?region=&endpoint=&use_path_style=
		gcsblob.Register,  // gs://bucket?endpoint=
		azblob.Register,   // azblob://container?endpoint=
	} {
		if err := register(reg); err != nil {
			return nil, fmt.Errorf("blob drivers: %w", err)
		}
	}
	return reg, nil
}

// archiveDrivers is the archive registry of this binary, shared with
// greyctl (cmd/internal/archivedrivers).
func archiveDrivers() (*archive.Registry, error) { return archivedrivers.Registry() }

// runtimeDrivers is the model runtime registry of this binary (the ai core
// imports no driver; cmd/internal/aidrivers lists them).
func runtimeDrivers() (*ai.Registry, error) { return aidrivers.Registry() }

// eventDrivers is the event-stream registry of this binary: the broker
// drivers greyd links (the events core imports none). A new driver is one
// import and one line.
func eventDrivers() (*events.Registry, error) {
	reg := events.NewRegistry()
	for _, register := range []func(*events.Registry) error{
		func(r *events.Registry) error { return memevents.Register(r, memevents.New()) }, // mem:// (one in-process broker: tests, demos)
		kafkaevents.Register,  // kafka://broker:port (settings from events.kafka)
		rabbitevents.Register, // amqp://, amqps:// (RabbitMQ)
	} {
		if err := register(reg); err != nil {
			return nil, fmt.Errorf("event drivers: %w", err)
		}
	}
	return reg, nil
}
