package daemon

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestUnitMemoryMaxHoldsTheBudgets: the packaged unit's MemoryMax leaves
// room for everything the default budgets let weftd hold.
func TestUnitMemoryMaxHoldsTheBudgets(t *testing.T) {
	unit, err := os.ReadFile("../packaging/systemd/weftd.service")
	if err != nil {
		t.Fatal(err)
	}
	var max int64
	for line := range strings.Lines(string(unit)) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "MemoryMax=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(v, "G"), 10, 64)
		if err != nil || !strings.HasSuffix(v, "G") {
			t.Fatalf("MemoryMax=%s: want whole gigabytes (nG)", v)
		}
		max = n << 30
	}
	if max == 0 {
		t.Fatal("the unit sets no MemoryMax")
	}
	if need := memoryNeed(DefaultConfig()); need > max {
		t.Errorf("the default budgets let weftd hold %d bytes; the unit's MemoryMax is %d", need, max)
	}
}
