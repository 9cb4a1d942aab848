package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/grey-distributed/grey/blobstore"
)

// Cloud providers (cloud.provider).
const (
	ProviderAWS   = "aws"
	ProviderGCP   = "gcp"
	ProviderAzure = "azure"
)

// CloudConfig is the seed's cloud block: where Grey runs, and the cost tags
// every object it writes carries (docs/BLOB.md). The blob drivers read
// region, project and subscription from it where a bucket URL does not say.
type CloudConfig struct {
	// Provider is "" (none), "aws", "gcp" or "azure".
	Provider string `yaml:"provider"`
	// Region is the AWS region (env AWS_REGION), or the region of GCP and
	// Azure resources Grey creates.
	Region string `yaml:"region"`
	// Project is the GCP project (env GOOGLE_PROJECT).
	Project string `yaml:"project"`
	// SubscriptionID is the Azure subscription (env AZURE_SUBSCRIPTION_ID).
	SubscriptionID string `yaml:"subscription_id"`
	// Environment is the grey-environment tag; "" means
	// tenants.cost.environment.
	Environment string `yaml:"environment"`
	// CostTags are added to every object Grey writes (S3 object tags, GCS
	// metadata, Azure blob index tags), after grey-tenant-id, grey-task-id
	// and grey-environment.
	CostTags map[string]string `yaml:"cost_tags"`
}

// notBuilt are the seed's integration blocks whose drivers this build does
// not have yet: naming one is an error that says so, not a silent no-op.
var notBuilt = map[string]string{}

// builtDatabases are the database blocks this build has.
var builtDatabases = map[string]bool{"database.postgres": true, "database.cassandra": true, "database.mongodb": true}

// notBuiltError names the first driver block under database
// (database.<driver>) that this build does not have, with its line and
// column, or returns nil.
func notBuiltError(name string, keys *keyIndex) error {
	var worst string
	for key := range keys.lines {
		if !strings.HasPrefix(key, "database.") || strings.Count(key, ".") > 1 || builtDatabases[key] {
			continue
		}
		d, wd := strings.Count(key, "."), strings.Count(worst, ".")
		if worst == "" || d > wd || (d == wd && keys.lines[key] < keys.lines[worst]) {
			worst = key
		}
	}
	if worst == "" {
		return nil
	}
	what, ok := notBuilt[worst]
	if !ok {
		what = "the database driver " + strings.TrimPrefix(worst, "database.")
	}
	return &Error{File: name, Line: keys.lines[worst], Column: max(keys.cols[worst], 1), Key: worst,
		Msg: fmt.Sprintf("%s is not built yet in this version of greyd; remove %s (see docs/BLOB.md, \"Integration files\")", what, worst)}
}

var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// cloud validates the cloud block.
func (v *validator) cloud(c *CloudConfig) {
	v.oneOf("cloud.provider", c.Provider, "", ProviderAWS, ProviderGCP, ProviderAzure)
	if c.Region != "" && !regionRE.MatchString(c.Region) {
		v.fail("cloud.region", "must be a region name such as us-east-1, europe-west1 or westeurope, got %q", c.Region)
	}
	if c.Project != "" && !regionRE.MatchString(c.Project) {
		v.fail("cloud.project", "must be a GCP project id (lower-case letters, digits, '-'), got %q", c.Project)
	}
	if strings.ContainsAny(c.SubscriptionID, " \t/") {
		v.fail("cloud.subscription_id", "must be an Azure subscription id, got %q", c.SubscriptionID)
	}
	if c.Environment != "" {
		if err := blobstore.ValidateTags(map[string]string{blobstore.TagEnvironment: c.Environment}); err != nil {
			v.fail("cloud.environment", "%s", strings.TrimPrefix(tagMsg(err), "tag grey-environment: "))
		}
	}
	if err := blobstore.ValidateTags(c.CostTags); err != nil {
		v.fail("cloud.cost_tags", "%s", tagMsg(err))
	}
	for k := range c.CostTags {
		if strings.HasPrefix(strings.ToLower(k), "grey-") {
			v.fail("cloud.cost_tags", "tag %q: the grey- prefix is Grey's own (grey-tenant-id, grey-task-id, grey-environment)", k)
		}
	}
	// S3 and Azure allow 10 tags per object; Grey's take up to three.
	if len(c.CostTags) > 7 {
		v.fail("cloud.cost_tags", "has %d tags; at most 7 fit beside Grey's three (S3 and Azure allow 10 per object)", len(c.CostTags))
	}
}

// tagMsg is a tag validation error's message without its code.
func tagMsg(err error) string {
	s := err.Error()
	if _, after, ok := strings.Cut(s, ": "); ok {
		s = after
	}
	return strings.TrimSuffix(s, " (field cloud.cost_tags)")
}
