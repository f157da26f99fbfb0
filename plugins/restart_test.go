package plugins_test

import (
	"context"
	"testing"

	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/plugins/driver"
)

// A driver restarted through the Manager answers at once, every time: the
// goroutine that took the last run's requests does not keep the next
// run's from being woken.
func TestRestartThenAsk(t *testing.T) {
	e := newEnv(t)
	m := e.start(t, plugins.Decl{Name: "local", Public: true, Factory: func() driver.Driver { return &upper{} }})
	for range 100 {
		if err := m.Restart(context.Background(), "local"); err != nil {
			t.Fatal(err)
		}
		if got := e.mustAsk(t, "local", "x"); got != "X" {
			t.Fatalf("answer %q", got)
		}
	}
}
