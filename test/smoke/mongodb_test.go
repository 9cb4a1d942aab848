package smoke

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/grey-distributed/grey/internal/testenv"
)

// TestMongoDB runs against FerretDB (MongoDB wire protocol on PostgreSQL).
func TestMongoDB(t *testing.T) {
	url := testenv.ServiceURL(t, "mongodb")
	ctx := ctxFor(t, 30*time.Second)
	client, err := mongo.Connect(options.Client().ApplyURI(url).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)

	db := client.Database("grey_smoke")
	coll := db.Collection("tasks_" + uniq())
	defer coll.Drop(ctx)
	id := "task-" + uniq()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: "t1"}, {Key: "attempts", Value: 3}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got struct {
		ID       string `bson:"_id"`
		Tenant   string `bson:"tenant"`
		Attempts int    `bson:"attempts"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "tenant", Value: "t1"}}).Decode(&got); err != nil {
		t.Fatalf("find: %v", err)
	}
	if got.ID != id || got.Attempts != 3 {
		t.Fatalf("got %+v", got)
	}
}
