package wasm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/weftos/weft/internal/wasmbounds"
)

// moduleInfo is what Compile needs to know about a module before handing
// it to Extism: its imports and exports, with function types.
type moduleInfo struct {
	imports  []importInfo
	exports  map[string]exportInfo
	versions []int // N of every exported weft_abi_vN function
}

type funcType struct{ params, results []byte }

func (t funcType) String() string {
	name := func(vs []byte) string {
		var s []string
		for _, v := range vs {
			switch v {
			case 0x7f:
				s = append(s, "i32")
			case 0x7e:
				s = append(s, "i64")
			case 0x7d:
				s = append(s, "f32")
			case 0x7c:
				s = append(s, "f64")
			default:
				s = append(s, fmt.Sprintf("0x%02x", v))
			}
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return name(t.params) + " -> " + name(t.results)
}

func (t funcType) equal(params, results []byte) bool {
	return string(t.params) == string(params) && string(t.results) == string(results)
}

type importInfo struct {
	module, name string
	kind         byte
	typ          funcType // for a function
}

type exportInfo struct {
	kind byte
	typ  funcType // for a function
}

const (
	kindFunc   = 0
	kindTable  = 1
	kindMemory = 2
	kindGlobal = 3
	kindTag    = 4
)

// wasmReader reads the parts of the binary format inspect needs.
type wasmReader struct {
	b   []byte
	err error
}

var errShort = errors.New("unexpected end")

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *wasmReader) uleb() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("LEB128 integer too long")
	return 0
}

func (r *wasmReader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *wasmReader) name() string { return string(r.take(r.uleb())) }

func (r *wasmReader) limits() {
	fl := r.byte()
	r.uleb()
	if fl&1 != 0 {
		r.uleb()
	}
}

// inspect checks a module's counts and sizes (wasmbounds.Check) and
// reads its type, import, function and export sections. It checks the
// structure only as far as it reads; wazero validates the rest.
func inspect(b []byte) (*moduleInfo, error) {
	// First, before anything that allocates what the module's counts
	// claim: wazero does, and Compile hands the module to it.
	if err := wasmbounds.Check(b); err != nil {
		return nil, err
	}
	info := &moduleInfo{exports: make(map[string]exportInfo)}
	var types []funcType
	var funcs []uint32 // type index of every function, imported ones first
	r := &wasmReader{b: b[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		sec := &wasmReader{b: r.take(r.uleb())}
		if r.err != nil {
			break
		}
		switch id {
		case 1: // type
			n := sec.uleb()
			for i := uint64(0); i < n && sec.err == nil; i++ {
				if f := sec.byte(); f != 0x60 && sec.err == nil {
					sec.err = fmt.Errorf("type %d is not a function type", i)
				}
				var t funcType
				t.params = sec.take(sec.uleb())
				t.results = sec.take(sec.uleb())
				types = append(types, t)
			}
		case 2: // import
			n := sec.uleb()
			for i := uint64(0); i < n && sec.err == nil; i++ {
				im := importInfo{module: sec.name(), name: sec.name(), kind: sec.byte()}
				switch im.kind {
				case kindFunc:
					ti := sec.uleb()
					if sec.err == nil && ti >= uint64(len(types)) {
						sec.err = fmt.Errorf("import %s.%s has type index %d out of range", im.module, im.name, ti)
						break
					}
					if sec.err == nil {
						im.typ = types[ti]
					}
					funcs = append(funcs, uint32(ti))
				case kindTable:
					sec.byte()
					sec.limits()
				case kindMemory:
					sec.limits()
				case kindGlobal:
					sec.byte()
					sec.byte()
				case kindTag:
					sec.byte()
					sec.uleb()
				default:
					if sec.err == nil {
						sec.err = fmt.Errorf("import %s.%s has unknown kind %d", im.module, im.name, im.kind)
					}
				}
				info.imports = append(info.imports, im)
			}
		case 3: // function
			n := sec.uleb()
			for i := uint64(0); i < n && sec.err == nil; i++ {
				funcs = append(funcs, uint32(sec.uleb()))
			}
		case 7: // export
			n := sec.uleb()
			for i := uint64(0); i < n && sec.err == nil; i++ {
				name := sec.name()
				ex := exportInfo{kind: sec.byte()}
				idx := sec.uleb()
				if sec.err != nil {
					break
				}
				if ex.kind == kindFunc {
					if idx >= uint64(len(funcs)) || uint64(funcs[idx]) >= uint64(len(types)) {
						sec.err = fmt.Errorf("export %q names function %d, out of range", name, idx)
						break
					}
					ex.typ = types[funcs[idx]]
					if v, ok := strings.CutPrefix(name, "weft_abi_v"); ok {
						if n, err := strconv.Atoi(v); err == nil && n > 0 && strconv.Itoa(n) == v {
							info.versions = append(info.versions, n)
						}
					}
				}
				info.exports[name] = ex
			}
		}
		if sec.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, sec.err)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("malformed section: %w", r.err)
	}
	return info, nil
}
