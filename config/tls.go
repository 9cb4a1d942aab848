package config

// TLSConfig configures TLS on the API and mutual TLS between nodes.
type TLSConfig struct{}

// tls validates the tls block.
func (v *validator) tls(t *TLSConfig) {}
