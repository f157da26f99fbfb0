package store_test

import (
	"testing"

	"github.com/weftos/weft/internal/deptest"
)

// TestImports keeps store at the bottom of the house: outside the standard
// library it may depend on bbolt (and golang.org/x/sys, which bbolt needs)
// only — nothing else of weft, no Extism, wazero, gRPC, Connect, minio or
// libp2p.
func TestImports(t *testing.T) {
	deptest.Check(t, "github.com/weftos/weft/store", deptest.Prefixes("go.etcd.io/bbolt", "golang.org/x/sys"))
}
