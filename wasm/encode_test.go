package wasm

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

// Guests get only valid UTF-8 in a message's strings (docs/abi.md; the
// Go SDK's decoder relies on it): an error's detail that quotes bytes
// that are not is mended on the way in.
func TestMessageStringsAreUTF8(t *testing.T) {
	a, err := kernel.ParseAddress("our@x:y:z")
	if err != nil {
		t.Fatal(err)
	}
	m := kernel.NewMessage(kernel.KindError, 7, a, a, nil)
	m.Error = &kernel.SendError{Kind: kernel.ErrTimeout, Target: a, Detail: "a driver said \xff\xfe"}
	in := &inst{}
	n := in.setCurrent(m)
	if n <= 0 {
		t.Fatalf("setCurrent: %d (%s)", n, in.lastErr)
	}
	am, err := abi.DecodeMessage(in.msg)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(am.ErrorDetail) || !strings.Contains(am.ErrorDetail, "a driver said \uFFFD") {
		t.Errorf("error detail %q", am.ErrorDetail)
	}
}
