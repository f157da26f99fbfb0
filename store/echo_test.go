package store

import (
	"strings"
	"testing"

	"github.com/weftos/weft/internal/echoed"
)

// A path from a guest or a client may be of any length: an error repeats
// at most echoed.MaxBytes of it.
func TestPathErrorsAreCut(t *testing.T) {
	d, _ := newDrives(t, 1<<20)
	if err := d.Create("notes:examples", "files"); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("a/", 1<<19)
	for name, err := range map[string]error{
		"WriteFile":  d.WriteFile("notes:examples", "files", huge, []byte("x")),
		"Mkdir":      d.Mkdir("notes:examples", "files", huge),
		"Rename":     d.Rename("notes:examples", "files", huge, huge),
		"RemovePath": d.RemovePath("notes:examples", "files", huge, false),
		"ReadFile": func() error {
			_, err := d.ReadFile("notes:examples", "files", huge)
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s of a 1 MiB path: no error", name)
			continue
		}
		if msg := err.Error(); len(msg) > 3*echoed.MaxBytes+256 || !strings.Contains(msg, "bytes cut)") {
			t.Errorf("%s of a 1 MiB path: error of %d bytes, want it cut: %.300s", name, len(msg), msg)
		}
	}
}
