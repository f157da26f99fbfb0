package deptest

import (
	"fmt"
	"strings"
	"testing"
)

const table = `
Some prose.

| layer | package | owns | imports (besides the standard library) |
| --- | --- | --- | --- |
| main | ` + "`cmd/weftd`" + ` | the main | ` + "`daemon`" + ` |
| top | ` + "`daemon/`" + ` | wiring | ` + "`kernel`, `store`, `github.com/BurntSushi/toml`" + ` |
| 1 | ` + "`kernel/`, `store/`" + ` | the kernel | — |
| 0 | ` + "`abi/`" + ` | encodings | — |
| guest | ` + "`sdk/go/weft`, `examples/...`" + ` | guests | ` + "`abi`, `sdk/go/weft`" + ` |
| test | ` + "`internal/wasmtest`" + ` | helpers | ` + "`kernel`" + ` |

After.
`

func good() Graph {
	return Graph{
		"cmd/weftd":         {"daemon"},
		"daemon":            {"kernel", "store", "github.com/BurntSushi/toml"},
		"kernel":            {},
		"store":             {},
		"abi":               {},
		"sdk/go/weft":       {"abi"},
		"examples/echo":     {"sdk/go/weft"},
		"internal/wasmtest": {"kernel"},
	}
}

func TestParseTable(t *testing.T) {
	rules, err := ParseTable(table)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(rules)
	want := "[{main [cmd/weftd] [daemon] 6} {top [daemon] [kernel store github.com/BurntSushi/toml] 7} {1 [kernel store] [] 8} {0 [abi] [] 9} {guest [sdk/go/weft examples/...] [abi sdk/go/weft] 10} {test [internal/wasmtest] [kernel] 11}]"
	if got != want {
		t.Errorf("rules\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{
		"no table here",
		"| layer | package | owns | imports (besides the standard library) |\n|---|---|---|---|\n| 9 | `x` | y | — |",
		"| layer | package | owns | imports (besides the standard library) |\n|---|---|---|---|\n| 1 | x | y | — |",
		"| layer | package | owns | imports (besides the standard library) |\n|---|---|---|---|\n| 1 | `x` | y |",
		table + table,
	} {
		if _, err := ParseTable(bad); err == nil {
			t.Errorf("ParseTable(%q) = nil error", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	rules, err := ParseTable(table)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Check(rules, good()); len(errs) != 0 {
		t.Fatalf("a graph that keeps to the table: %v", errs)
	}
	for _, tc := range []struct {
		name  string
		edit  func(Graph)
		table func(string) string
		want  string
	}{
		{name: "new package", edit: func(g Graph) { g["backup"] = nil }, want: "backup has no row"},
		{name: "row without package", edit: func(g Graph) { delete(g, "abi") }, want: "abi is in the layer table but not in the module"},
		{name: "folder row without package", edit: func(g Graph) { delete(g, "examples/echo") }, want: "examples/... is in the layer table but not in the module"},
		{name: "import not listed", edit: func(g Graph) { g["kernel"] = []string{"abi"} }, want: "kernel imports abi, which its row"},
		{name: "external not listed", edit: func(g Graph) { g["store"] = []string{"go.etcd.io/bbolt"} }, want: "store imports go.etcd.io/bbolt"},
		{name: "external subpackage allowed", edit: func(g Graph) { g["daemon"] = append(g["daemon"], "github.com/BurntSushi/toml/internal") }},
		{name: "upward in the table", table: func(s string) string {
			return strings.Replace(s, "| the kernel | — |", "| the kernel | `daemon` |", 1)
		}, want: "kernel (layer 1) lists daemon (layer top): imports point down only"},
		{name: "sideways in the table", table: func(s string) string {
			return strings.Replace(s, "| the kernel | — |", "| the kernel | `store` |", 1)
		}, want: "lists store (layer 1)"},
		{name: "test helper imported", table: func(s string) string {
			return strings.Replace(s, "`kernel`, `store`, `github.com", "`internal/wasmtest`, `kernel`, `store`, `github.com", 1)
		}, want: "lists internal/wasmtest (layer test)"},
		{name: "guest imports the node", table: func(s string) string {
			return strings.Replace(s, "`abi`, `sdk/go/weft` |", "`abi`, `kernel` |", 1)
		}, want: "lists kernel (layer 1)"},
		{name: "guest imports a module", table: func(s string) string {
			return strings.Replace(s, "`abi`, `sdk/go/weft` |", "`abi`, `sdk/go/weft`, `github.com/extism/go-pdk` |", 1)
		}, want: "guest code may not import github.com/extism/go-pdk"},
		{name: "node imports a guest", table: func(s string) string {
			return strings.Replace(s, "| wiring | `kernel`", "| wiring | `sdk/go/weft`, `kernel`", 1)
		}, want: "lists sdk/go/weft (layer guest)"},
		{name: "two rows", table: func(s string) string {
			return strings.Replace(s, "`internal/wasmtest` |", "`internal/wasmtest`, `kernel` |", 1)
		}, want: "kernel has rows on lines 8 and 11"},
		{name: "listed name that is no package", table: func(s string) string {
			return strings.Replace(s, "| encodings | — |", "| encodings | `nothing` |", 1)
		}, want: "abi lists nothing, which is no package of the module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := table
			if tc.table != nil {
				tab = tc.table(tab)
			}
			rules, err := ParseTable(tab)
			if err != nil {
				t.Fatal(err)
			}
			g := good()
			if tc.edit != nil {
				tc.edit(g)
			}
			errs := Check(rules, g)
			if tc.want == "" {
				if len(errs) != 0 {
					t.Errorf("Check = %v, want no error", errs)
				}
				return
			}
			var all []string
			for _, e := range errs {
				all = append(all, e.Error())
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.want) {
				t.Errorf("Check = %q, want an error containing %q", all, tc.want)
			}
		})
	}
}
