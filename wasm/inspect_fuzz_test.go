package wasm

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// watCorpus is every module of testdata/*.wat and of importCases.
func watCorpus(tb testing.TB) map[string][]byte {
	tb.Helper()
	mods := map[string][]byte{}
	srcs, _ := filepath.Glob(filepath.Join("testdata", "*.wat"))
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".wat")
		mods[name] = buildWAT(tb, name)
	}
	for _, tc := range importCases {
		mods[tc.name] = watText(tb, tc.wat)
	}
	return mods
}

// FuzzCheckModule: CheckModule never panics, whatever the bytes; a module
// it accepts imports only functions of providedFuncs, each with its type;
// and a custom section appended changes nothing.
//
// It does not compare inspect with wazero's decoder, as
// TestInspectAgreesWithWazero does for real modules: wazero allocates
// what a module's counts claim before reading the items, so a few bytes
// that claim 2³² types exhaust the fuzzer's memory.
func FuzzCheckModule(f *testing.F) {
	for _, m := range watCorpus(f) {
		f.Add(m)
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	custom := []byte{0, 6, 5, 'w', 'e', 'f', 't', '!'}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckModule(data)
		info, ierr := inspect(data)
		if ierr != nil {
			if err == nil {
				t.Fatalf("CheckModule accepted what inspect refused: %v", ierr)
			}
			return
		}
		if err == nil {
			for _, im := range info.imports {
				want, ok := providedFuncs()[im.module][im.name]
				if im.kind != kindFunc || !ok || !im.typ.equal(want.params, want.results) {
					t.Fatalf("CheckModule accepted import %s.%s (kind %d, type %s)", im.module, im.name, im.kind, im.typ)
				}
			}
		}
		err2 := CheckModule(append(slices.Clip(data), custom...))
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("a custom section appended changed CheckModule from %v to %v", err, err2)
		}
	})
}

// TestInspectAgreesWithWazero: for every module of the tests, inspect
// reads the function imports and exports wazero reads, with the same
// types, so that the import check judges what the node would link.
func TestInspectAgreesWithWazero(t *testing.T) {
	mods := watCorpus(t)
	mods["guest.c"] = buildC(t, "guest")
	mods["goecho"] = buildGo(t)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	for name, bin := range mods {
		cm, err := rt.CompileModule(ctx, bin)
		if err != nil {
			t.Fatalf("%s: wazero: %v", name, err)
		}
		info, err := inspect(bin)
		if err != nil {
			t.Fatalf("%s: wazero compiles the module, inspect refuses it: %v", name, err)
		}
		var got, want []string
		for _, im := range info.imports {
			if im.kind == kindFunc {
				got = append(got, im.module+"."+im.name+" "+im.typ.String())
			}
		}
		for _, d := range cm.ImportedFunctions() {
			mod, name, _ := d.Import()
			want = append(want, mod+"."+name+" "+funcType{valueBytes(d.ParamTypes()), valueBytes(d.ResultTypes())}.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: inspect read the function imports\n%q\nwazero\n%q", name, got, want)
		}
		got, want = nil, nil
		for n, ex := range info.exports {
			if ex.kind == kindFunc {
				got = append(got, n+" "+ex.typ.String())
			}
		}
		for n, d := range cm.ExportedFunctions() {
			want = append(want, n+" "+funcType{valueBytes(d.ParamTypes()), valueBytes(d.ResultTypes())}.String())
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: inspect read the function exports\n%q\nwazero\n%q", name, got, want)
		}
		cm.Close(ctx)
	}
}
