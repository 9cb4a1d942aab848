package server

import (
	"fmt"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/proof"
)

// newSigner loads (or creates) the node's proof key and picks the
// configured attester.
func newSigner(cfg *config.Config) (*proof.Signer, error) {
	key, err := proof.LoadOrCreateKey(cfg.KeyPath())
	if err != nil {
		return nil, fmt.Errorf("proofs.key_file: %w", err)
	}
	att, err := newAttester(cfg.Proofs.Attester)
	if err != nil {
		return nil, fmt.Errorf("proofs.attester: %w", err)
	}
	return &proof.Signer{Key: key, NodeID: cfg.Node.ID, Attester: att}, nil
}

func newAttester(name string) (proof.Attester, error) {
	switch name {
	case "", proof.PlatformSoftware:
		return proof.Software{}, nil
	}
	return nil, fmt.Errorf("attester %q is not available", name)
}
