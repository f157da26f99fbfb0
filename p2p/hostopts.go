package p2p

import "github.com/libp2p/go-libp2p"

// hostOptions, when set, gives newHost further libp2p options for the
// node of cfg, applied after weft's own so that they win. It is nil in
// production; only this package's tests set it (to put a host on a
// simulated network), and they reset it when they end.
var hostOptions func(cfg Config) []libp2p.Option

// extraHostOptions returns hostOptions' options for cfg, none if unset.
func extraHostOptions(cfg Config) []libp2p.Option {
	if hostOptions == nil {
		return nil
	}
	return hostOptions(cfg)
}
