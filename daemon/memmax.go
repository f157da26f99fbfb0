package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// runtimeReserve is what weftd holds besides its budgets, at most: the Go
// runtime, mailboxes, the store's caches, the compiled modules.
const runtimeReserve = 512 << 20

// memoryNeed is the most memory cfg's budgets let clients and guests make
// weftd hold: every guest's linear memory, request bodies in flight twice
// (read, then decoded), and runtimeReserve.
func memoryNeed(cfg Config) int64 {
	return cfg.Limits.WithDefaults().GuestMemoryTotal + 2*cfg.API.MaxRequestBytesInFlight + runtimeReserve
}

// cgroupMemoryMax is the memory.max of the cgroup (v2) weftd runs in, and
// false when there is none or it is "max".
func cgroupMemoryMax() (int64, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		path, ok := strings.CutPrefix(strings.TrimSpace(line), "0::")
		if !ok {
			continue
		}
		v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", path, "memory.max"))
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		return n, err == nil
	}
	return 0, false
}
