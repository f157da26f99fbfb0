//go:build !wasip1

package weft

import (
	"errors"
	"strings"
	"testing"
)

// Outside a node every call fails plainly.
func TestAbsentNode(t *testing.T) {
	install(t, nil)
	sdk.node = absent{}
	_, err := Await()
	if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "not running inside a weft node") {
		t.Fatalf("Await outside a node = %v", err)
	}
	if _, err := Request("a:b:c").Send(); !errors.Is(err, ErrInternal) {
		t.Fatalf("Send outside a node = %v", err)
	}
	if Self() != "" {
		t.Fatal("Self outside a node is not empty")
	}
}
