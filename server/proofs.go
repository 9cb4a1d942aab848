package server

import (
	"fmt"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/proof/tee"
)

// newSigner loads (or creates) the node's proof key and picks the
// configured attester.
func newSigner(cfg *config.Config) (*proof.Signer, error) {
	key, err := proof.LoadOrCreateKey(cfg.KeyPath())
	if err != nil {
		return nil, fmt.Errorf("proofs.key_file: %w", err)
	}
	att, err := tee.NewAttester(cfg.Proofs.Attester)
	if err != nil {
		return nil, fmt.Errorf("proofs.attester: %w", err)
	}
	return &proof.Signer{Key: key, NodeID: cfg.Node.ID, Attester: att}, nil
}
