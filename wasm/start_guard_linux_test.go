package wasm

import (
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/kernel"
)

// An instance that fails while wazero makes it — its start function
// trapped, or the CPU guard killed it there — gives both its memories,
// the guest's and Extism's, back to the pool: none stays mapped for
// good, and none is pooled twice.
func TestStartFailureFreesMemory(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"starttrap", "unreachable"},
		{"startspin", "killed by the CPU guard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{limits: startGuardLimits})
			// The guard's tick empties a pool nothing was taken from for
			// poolIdle (trim): not during this test.
			e.host.mems.mu.Lock()
			e.host.mems.lastGet = time.Now().Add(time.Hour)
			e.host.mems.mu.Unlock()
			m := e.compile(t, tc.name+".wasm", buildWAT(t, tc.name))
			id := e.start(t, tc.name, m, false, ProcessOptions{})
			info := e.waitFor(t, id, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
			if !strings.Contains(info.LastError, tc.want) {
				t.Errorf("last error %q does not contain %q", info.LastError, tc.want)
			}
			if n := e.host.mems.len(); n != 2 {
				t.Errorf("the pool holds %d mappings after the failed instance; want its 2 memories", n)
			}
		})
	}
}
