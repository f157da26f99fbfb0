package kernel_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
)

// A name error repeats its input cut: a name sent from outside may be of
// any length.
func TestNameErrorTruncates(t *testing.T) {
	huge := strings.Repeat("A", 1<<20)
	for _, parse := range []func(string) error{
		func(s string) error { _, err := kernel.ParseAddress(s); return err },
		func(s string) error { _, err := kernel.ParseAddress("our@" + s + ":b:c"); return err },
		func(s string) error { _, err := kernel.ParseProcessId(s); return err },
		func(s string) error { _, err := kernel.ParsePackageId(s); return err },
		func(s string) error { return kernel.ValidateNode(s) },
	} {
		err := parse(huge)
		var ne *kernel.NameError
		if !errors.As(err, &ne) {
			t.Fatalf("error %.100v (%T), want a *kernel.NameError", err, err)
		}
		if msg := err.Error(); len(msg) > echoed.MaxBytes+200 || !strings.Contains(msg, "bytes cut)") {
			t.Errorf("error of %d bytes for a 1 MiB name, want it cut: %.400s", len(msg), msg)
		}
		if len(ne.Input) < 1<<20 {
			t.Errorf("NameError.Input holds %d bytes, want the whole input", len(ne.Input))
		}
	}
}
