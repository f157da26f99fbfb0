package identity

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/multiformats/go-multibase"
)

// The base36 codec agrees with go-multibase's on any bytes, including
// leading zero bytes, which node ids never have.
func TestBase36MatchesMultibase(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	inputs := [][]byte{{}, {0}, {0, 0}, {1}, {35}, {36}, {0, 0, 1, 0}, {0xff, 0xff}, bytes.Repeat([]byte{0xff}, 40)}
	for range 500 {
		b := make([]byte, r.IntN(48))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		for i := 0; i < len(b) && r.IntN(3) == 0; i++ {
			b[i] = 0
		}
		inputs = append(inputs, b)
	}
	for _, b := range inputs {
		want, err := multibase.Encode(multibase.Base36, b)
		if err != nil {
			t.Fatal(err)
		}
		got := string(base36Prefix) + base36Encode(b)
		if got != want {
			t.Fatalf("base36Encode(%x) = %q, go-multibase says %q", b, got, want)
		}
		if back := base36Decode(got[1:]); !bytes.Equal(back, b) {
			t.Fatalf("base36Decode(%q) = %x, want %x", got[1:], back, b)
		}
	}
}
