package wasmbounds

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// --- Building modules byte by byte ----------------------------------------

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// huge is 2³²-1, the largest count a module can claim, in LEB128.
var huge = uleb(1<<32 - 1)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// vec is a vector: its count, then its items.
func vec(items ...[]byte) []byte { return cat(uleb(uint64(len(items))), cat(items...)) }

func name(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

func section(id byte, content ...[]byte) []byte {
	c := cat(content...)
	return cat([]byte{id}, uleb(uint64(len(c))), c)
}

func module(sections ...[]byte) []byte {
	return cat([]byte("\x00asm\x01\x00\x00\x00"), cat(sections...))
}

func repeat(b []byte, n int) []byte { return bytes.Repeat(b, n) }

var i32Const0 = []byte{0x41, 0x00, 0x0b} // i32.const 0, end

// everySection is a valid module with every section Check reads, each
// with every kind of item: wazero compiles it, and Check accepts it.
func everySection() []byte {
	return module(
		section(1, vec(
			[]byte{0x60, 0, 1, 0x7f},       // () -> (i32)
			[]byte{0x60, 2, 0x7f, 0x7e, 0}, // (i32, i64) -> ()
			[]byte{0x60, 0, 0},             // () -> ()
		)),
		section(2, vec(
			cat(name("weft"), name("log"), []byte{0, 1}), // a function of type 1
		)),
		section(3, vec([]byte{0}, []byte{2})),
		section(4, vec([]byte{0x70, 0x01, 2, 2}, []byte{0x6f, 0x00, 0})),
		section(5, vec([]byte{0x01, 1, 2})),
		section(6, vec(
			cat([]byte{0x7f, 0}, i32Const0),
			cat([]byte{0x7e, 1}, []byte{0x42, 0x7f, 0x0b}),
			cat([]byte{0x7d, 0}, []byte{0x43, 0, 0, 0, 0, 0x0b}),
			cat([]byte{0x7c, 0}, []byte{0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b}),
			cat([]byte{0x70, 0}, []byte{0xd2, 1, 0x0b}),
			cat([]byte{0x6f, 0}, []byte{0xd0, 0x6f, 0x0b}),
			cat([]byte{0x7b, 0}, []byte{0xfd, 0x0c}, make([]byte, 16), []byte{0x0b}),
		)),
		section(7, vec(
			cat(name("memory"), []byte{2, 0}),
			cat(name("init"), []byte{0, 1}),
			cat(name("g"), []byte{3, 0}),
			cat(name("t"), []byte{1, 0}),
		)),
		section(8, []byte{2}),
		section(9, vec(
			cat([]byte{0}, i32Const0, vec([]byte{1})),
			cat([]byte{1, 0}, vec([]byte{1}, []byte{2})),
			cat([]byte{2, 0}, i32Const0, []byte{0}, vec([]byte{1})),
			cat([]byte{3, 0}, vec([]byte{1})),
			cat([]byte{4}, i32Const0, vec([]byte{0xd2, 1, 0x0b})),
			cat([]byte{5, 0x70}, vec([]byte{0xd0, 0x70, 0x0b})),
			cat([]byte{6, 0}, i32Const0, []byte{0x70}, vec([]byte{0xd2, 2, 0x0b})),
			cat([]byte{7, 0x70}, vec([]byte{0xd2, 1, 0x0b})),
		)),
		section(12, []byte{3}),
		section(10, vec(
			cat(uleb(8), vec([]byte{2, 0x7f}, []byte{1, 0x7e}), []byte{0x41, 7, 0x0b}),
			cat(uleb(2), vec(), []byte{0x0b}),
		)),
		section(11, vec(
			cat([]byte{0}, i32Const0, name("hi")),
			cat([]byte{1}, name("passive")),
			cat([]byte{2, 0}, i32Const0, name("")),
		)),
		section(0, name("name"),
			section(0, name("everySection")),
			section(1, vec(cat(uleb(1), name("init")), cat(uleb(2), name("start")))),
			section(2, vec(cat(uleb(1), vec(cat(uleb(0), name("a")), cat(uleb(2), name("b")))))),
			section(9, []byte("an unknown subsection")),
		),
		section(0, name("producers"), []byte("anything at all")),
	)
}

func TestAcceptsEverySection(t *testing.T) {
	m := everySection()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := rt.NewHostModuleBuilder("weft").NewFunctionBuilder().
		WithFunc(func(int32, int64) {}).Export("log").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, m)
	if err != nil {
		t.Fatalf("wazero refuses the test's module: %v", err)
	}
	if _, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig()); err != nil {
		t.Fatalf("wazero instantiates the test's module: %v", err)
	}
	if err := Check(m); err != nil {
		t.Fatalf("Check refused a valid module: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Check(m) }); n != 0 {
		t.Errorf("Check of a valid module allocates %v times, want 0", n)
	}
}

// bomb is the module of issue 12: a type section that claims 2³²-1 types.
var bomb = []byte("\x00asm\x01\x00\x00\x00\x01\x05\xff\xff\xff\xff\x0f")

// bombs are modules with a count or size that would make wazero v1.9.0
// allocate far more than the module holds (most, what ends the process),
// and the error Check gives for each.
var bombs = []struct {
	name   string
	module []byte
	want   string
}{
	{"2³²-1 types (issue 12)", bomb,
		"type section, at byte 10: 4294967295 types claimed, but only 0 bytes follow in the section (types take at least 3 each)"},
	{"2³²-1 parameters", module(section(1, uleb(1), []byte{0x60}, huge, []byte{0})),
		"type section, at byte 12: 4294967295 parameters claimed, but only 1 bytes follow in the section"},
	{"2³²-1 results", module(section(1, uleb(1), []byte{0x60, 0}, huge)),
		"type section, at byte 13: 4294967295 results claimed"},
	{"1,001 parameters", module(section(1, uleb(1), []byte{0x60}, uleb(1001), repeat([]byte{0x7f}, 1001), []byte{0})),
		"type section, at byte 13: 1001 parameters, more than the 1000 allowed"},
	{"1,000,001 types", module(section(1, uleb(1_000_001), repeat([]byte{0x60, 0, 0}, 1_000_001))),
		"type section, at byte 13: 1000001 types, more than the 1000000 allowed"},
	{"2³²-1 imports", module(section(2, huge)),
		"import section, at byte 10: 4294967295 imports claimed"},
	{"an import's module name of 2³²-1 bytes", module(section(2, uleb(1), huge, repeat([]byte{0}, 3))),
		"import section, at byte 11: an import's module name of 4294967295 bytes claimed, but only 3 bytes follow in the section"},
	{"an import's name of 2³²-1 bytes", module(section(2, uleb(1), name("env"), huge, []byte{0, 0, 0})),
		"import section, at byte 15: an import's name of 4294967295 bytes claimed"},
	{"2³²-1 functions", module(section(3, huge)),
		"function section, at byte 10: 4294967295 functions claimed"},
	{"2³²-1 tables", module(section(4, huge)),
		"table section, at byte 10: 4294967295 tables claimed"},
	{"tables of 10,000,001 entries in all", module(section(4, vec(
		cat([]byte{0x70, 0}, uleb(5_000_000)),
		cat([]byte{0x70, 0}, uleb(5_000_001)),
	))),
		"table section, at byte 17: tables declare 10000001 entries in all, more than the 10000000 allowed"},
	{"2³²-1 globals", module(section(6, huge)),
		"global section, at byte 10: 4294967295 globals claimed"},
	{"2³²-1 exports", module(section(7, huge)),
		"export section, at byte 10: 4294967295 exports claimed"},
	{"an export's name of 2³²-1 bytes", module(section(7, uleb(1), huge, []byte{0, 0})),
		"export section, at byte 11: an export's name of 4294967295 bytes claimed"},
	{"2³²-1 element segments", module(section(9, huge)),
		"element section, at byte 10: 4294967295 element segments claimed"},
	{"2³²-1 function indexes in an element segment", module(section(9, uleb(1), []byte{0}, i32Const0, huge, []byte{0, 0})),
		"element section, at byte 15: 4294967295 function indexes claimed, but only 2 bytes follow in the section"},
	{"2³²-1 expressions in an element segment", module(section(9, uleb(1), []byte{5, 0x70}, huge, []byte{0xd0, 0x70, 0x0b})),
		"element section, at byte 13: 4294967295 element expressions claimed"},
	{"2³²-1 function bodies", module(section(10, huge)),
		"code section, at byte 10: 4294967295 function bodies claimed"},
	{"a function body of 2³²-1 bytes", module(section(10, uleb(1), huge, []byte{0, 0x0b})),
		"code section, at byte 11: function body 0 of 4294967295 bytes claimed, but only 2 bytes follow in the section"},
	{"2³²-1 locals", module(section(10, uleb(1), uleb(8), uleb(1), huge, []byte{0x7f, 0x0b})),
		"code section, at byte 13: function body 0 declares more than the 50000 locals allowed"},
	{"50,001 locals in two declarations", module(section(10, uleb(2),
		cat(uleb(2), vec(), []byte{0x0b}),
		cat(uleb(9), vec(cat(uleb(25_000), []byte{0x7f}), cat(uleb(25_001), []byte{0x7e})), []byte{0x0b}))),
		"code section, at byte 20: function body 1 declares more than the 50000 locals allowed"},
	{"1,000,001 locals in 21 function bodies", module(section(10, vec(append(items(localsBody(50_000), 20), localsBody(1))...))),
		"code section, at byte 154: function body 20 brings the locals declared to more than the 1000000 allowed in a module"},
	{"2³²-1 local declarations", module(section(10, uleb(1), uleb(6), huge, []byte{0x0b})),
		"code section, at byte 12: 4294967295 local declarations claimed, but only 1 bytes follow in the function body"},
	{"2³²-1 data segments", module(section(11, huge)),
		"data section, at byte 10: 4294967295 data segments claimed"},
	{"a data segment of 2³²-1 bytes", module(section(11, uleb(1), []byte{1}, huge, []byte("abc"))),
		"data section, at byte 12: data segment 0 of 4294967295 bytes claimed, but only 3 bytes follow in the section"},
	{"a custom section's name of 2³²-1 bytes", module(section(0, huge, []byte("x"))),
		"custom section, at byte 10: a custom section's name of 4294967295 bytes claimed, but only 1 bytes follow in the section"},
	{"a module name of 2³²-1 bytes", module(section(0, name("name"), section(0, huge, []byte("x")))),
		`custom "name" section, at byte 17: the module's name of 4294967295 bytes claimed, but only 1 bytes follow in the subsection`},
	{"2³²-1 function names", module(section(0, name("name"), section(1, huge, []byte{0, 0}))),
		`custom "name" section, at byte 17: 4294967295 function names claimed, but only 2 bytes follow in the subsection`},
	{"a function name of 2³²-1 bytes", module(section(0, name("name"), section(1, uleb(1), uleb(0), huge))),
		`custom "name" section, at byte 19: a name of 4294967295 bytes claimed`},
	{"2³²-1 functions with local names", module(section(0, name("name"), section(2, huge))),
		`custom "name" section, at byte 17: 4294967295 functions with local names claimed`},
	{"2³²-1 local names", module(section(0, name("name"), section(2, uleb(1), uleb(0), huge, []byte{0, 0}))),
		`custom "name" section, at byte 19: 4294967295 local names claimed`},
	// wazero reads subsection 1 whatever size it claims: one that claims
	// fewer bytes than it holds hides a count from a check of its size
	// alone.
	{"a name subsection that holds more than it claims", module(section(0, name("name"),
		[]byte{1}, uleb(1), uleb(1), cat(uleb(0), huge, []byte("x")))),
		`custom "name" section, at byte 17: 1 function names claimed, but only 0 bytes follow in the subsection`},
	{"a section larger than the module", module([]byte{1}, huge, []byte{0}),
		"type section, at byte 8: 4294967295 bytes claimed, but only 1 follow in the module"},
	{"a section of an unknown id larger than the module", module([]byte{42}, uleb(1000)),
		"unknown (id 42) section, at byte 8: 1000 bytes claimed, but only 0 follow in the module"},
	{"a section that ends before its items", module(section(3, uleb(2), []byte{0}), section(10, vec())),
		"function section, at byte 10: 2 functions claimed, but only 1 bytes follow in the section"},
	{"a section with bytes after its items", module(section(3, uleb(1), []byte{0, 0})),
		"function section, at byte 12: 1 bytes left over at the end of the section"},
	{"a section size of 6 LEB bytes", module([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0}),
		"type section, at byte 9: integer overflows 32 bits"},
	{"not Wasm", []byte("PK\x03\x04 not a module"), `not a WebAssembly binary (no \0asm magic)`},
	{"version 2", []byte("\x00asm\x02\x00\x00\x00"), "unsupported WebAssembly binary version 02000000"},
}

func TestRefusesBombs(t *testing.T) {
	for _, tc := range bombs {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.module)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Check: %v (%T), want an *Error", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: %q\nwant it to say %q", err, tc.want)
			}
			// Refusing costs the error and its message, whatever the
			// module claims.
			if per := allocatedPerRun(func() { _ = Check(tc.module) }); per > 1024 {
				t.Errorf("Check allocates %d bytes a run, want at most 1 KiB", per)
			}
		})
	}
}

// allocatedPerRun is how many bytes f allocates, on average over 100 runs.
func allocatedPerRun(f func()) uint64 {
	const runs = 100
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// TestAcceptsAtTheLimits: modules at the limits, and sections Check
// need not read, pass.
func TestAcceptsAtTheLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		module []byte
	}{
		{"empty", module()},
		{"1,000 parameters and results", module(section(1, uleb(1), []byte{0x60}, vec(items([]byte{0x7f}, 1000)...), vec(items([]byte{0x7e}, 1000)...)))},
		{"50,000 locals", module(section(10, uleb(1), uleb(10), vec(cat(uleb(25_000), []byte{0x7f}), cat(uleb(25_000), []byte{0x7e})), []byte{0x0b}))},
		{"1,000,000 locals in 20 function bodies", module(section(10, vec(items(localsBody(50_000), 20)...)))},
		{"tables of 10,000,000 entries", module(section(4, vec(cat([]byte{0x70, 0}, uleb(9_999_999)), []byte{0x70, 0, 1})))},
		{"an unknown custom section", module(section(0, name("x"), repeat([]byte{0xff}, 100)))},
		{"an empty name section", module(section(0, name("name")))},
		{"an unknown section id", module(section(13, []byte{0xff, 0xff}))},
		{"a tag import", module(section(2, vec(cat(name("env"), name("t"), []byte{4, 0, 0}))))},
	} {
		if err := Check(tc.module); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// localsBody is a function body, its size first, that declares n locals.
func localsBody(n uint64) []byte {
	b := cat(vec(cat(uleb(n), []byte{0x7f})), []byte{0x0b})
	return cat(uleb(uint64(len(b))), b)
}

// items is n items, each b.
func items(b []byte, n int) [][]byte {
	items := make([][]byte, n)
	for i := range items {
		items[i] = b
	}
	return items
}
