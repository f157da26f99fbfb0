// Package wasmbounds checks a WebAssembly module's counts and sizes
// before any decoder reads it: every vector holds the items it claims
// within its section, every name and byte string fits, and counts stay
// under the limits engines agree on. wazero's decoder allocates what a
// count claims before it reads a single item, and an allocation of 2³²
// items ends the Go process with a fatal error no recover catches; a
// module Check accepts makes it allocate in proportion to the module's
// bytes.
package wasmbounds

import (
	"fmt"
	"math"
	"strconv"
)

// The limits are the JS API's implementation limits, which V8,
// SpiderMonkey and JavaScriptCore enforce
// (https://webassembly.github.io/spec/js-api/#limits), unless said
// otherwise. Under them wazero allocates at most tens of bytes an item
// (a module of 1,000,000 types, 3 MB, costs it 98 MB); a real module
// stays well under each.
const (
	maxTypes     = 1_000_000
	maxFunctions = 1_000_000
	maxImports   = 1_000_000
	maxExports   = 1_000_000
	maxGlobals   = 1_000_000
	maxTables    = 100_000
	// maxTableEntries bounds the entries of one element segment (as the
	// JS API does) and the sum of every declared table's initial size
	// (the JS API bounds each table; instantiating one allocates 8 bytes
	// an entry, so the sum is what costs).
	maxTableEntries = 10_000_000
	// maxElements is wasmparser's (Firefox's) limit on element segments.
	maxElements = 100_000
	maxData     = 100_000
	maxParams   = 1_000
	maxResults  = 1_000
	// maxLocals bounds the locals a function body declares; wazero
	// allocates a byte per local before it reads the body.
	maxLocals = 50_000
	// maxModuleLocals bounds the locals all function bodies declare,
	// which Check adds (no engine does): a local costs a few bytes to
	// declare, wazero's interpreter about 57 bytes to compile (so 57 MB
	// for this many), and 50,000 of them in every function of a 7 KB
	// module made it allocate 2.7 GB. Go's guests declare about 4 a
	// function, 9,000 in all.
	maxModuleLocals = 1_000_000
)

// Error is why Check refused a module: what is wrong, in which section
// and at which byte of the module.
type Error struct {
	Section string // "type", "import", …, `custom "name"`; "" for the header
	Offset  int    // of what is wrong, from the module's first byte
	Reason  string
}

func (e *Error) Error() string {
	if e.Section == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s section, at byte %d: %s", e.Section, e.Offset, e.Reason)
}

var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory",
	"global", "export", "start", "element", "code", "data", "data count"}

// Check reads module as wazero's decoder (v1.9.0, WebAssembly 2.0
// features) reads it, without allocating, and refuses it with an *Error
// when a count or size is more than its bytes can hold or over a limit:
// the items of every section's vector, the value types of a function
// type, names and custom sections, element lists, data segments, the
// maps of the "name" section, and the locals function bodies declare (at
// most 50,000 in one, 1,000,000 in all). Declared tables may hold
// 10,000,000 entries in all; imported ones are sized by what provides
// them.
//
// Check reads every item wazero allocates for, in wazero's order, and
// refuses what it cannot read: a module it accepts has wazero read each
// count where Check did, or stop with an error first. It does not
// validate the module otherwise (types, indexes, instructions): wazero
// does.
func Check(module []byte) error {
	if len(module) < 8 || string(module[:4]) != "\x00asm" {
		return &Error{Reason: `not a WebAssembly binary (no \0asm magic)`}
	}
	if string(module[4:8]) != "\x01\x00\x00\x00" {
		return &Error{Reason: fmt.Sprintf("unsupported WebAssembly binary version %x", module[4:8])}
	}
	p := parser{b: module, pos: 8, end: len(module)}
	var tableEntries uint64
	for p.pos < len(module) && p.err == nil {
		at := p.pos
		id := p.byte()
		p.id, p.sec = id, ""
		if int(id) < len(sectionNames) {
			p.sec = sectionNames[id]
		}
		p.in = "module"
		size := p.u32()
		if left := p.end - p.pos; p.err == nil && uint64(size) > uint64(left) {
			p.fail(at, "%d bytes claimed, but only %d follow in the module", size, left)
		}
		if p.err != nil {
			break
		}
		end := p.pos + int(size)
		p.end, p.in = end, "section"
		switch id {
		case 0:
			p.custom()
		case 1:
			p.types()
		case 2:
			p.imports()
		case 3:
			n := p.count("functions", 1, maxFunctions)
			for i := 0; i < n && p.err == nil; i++ {
				p.u32()
			}
		case 4:
			n := p.count("tables", 3, maxTables)
			for i := 0; i < n && p.err == nil; i++ {
				at := p.pos
				p.byte() // reference type
				if tableEntries += uint64(p.limits()); tableEntries > maxTableEntries && p.err == nil {
					p.fail(at, "tables declare %d entries in all, more than the %d allowed", tableEntries, maxTableEntries)
				}
			}
		case 5:
			n := p.count("memories", 2, math.MaxUint32)
			for i := 0; i < n && p.err == nil; i++ {
				p.limits()
			}
		case 6:
			n := p.count("globals", 5, maxGlobals)
			for i := 0; i < n && p.err == nil; i++ {
				p.byte() // value type
				p.byte() // mutability
				p.constExpr()
			}
		case 7:
			p.exports()
		case 8, 12: // start: a function index; data count: a count of nothing allocated
			p.u32()
		case 9:
			p.elements()
		case 10:
			p.code()
		case 11:
			p.data()
		default: // wazero refuses the section before reading it
			p.pos = end
		}
		if p.err == nil && p.pos != end {
			p.fail(p.pos, "%d bytes left over at the end of the section", end-p.pos)
		}
		p.pos, p.end = end, len(module)
	}
	if p.err != nil {
		return p.err
	}
	return nil
}

// parser reads a module from pos up to end, the end of what is being
// read (the module, a section, a function body, a subsection); the first
// error stops it.
type parser struct {
	b        []byte
	pos, end int
	id       byte   // of the section being read
	sec      string // its name, for errors; "" for an unknown id
	in       string // what ends at end, for errors: "section", "function body", …
	err      *Error
	locals   uint64 // declared by the function bodies read so far
}

func (p *parser) fail(at int, format string, args ...any) {
	if p.err == nil {
		sec := p.sec
		if sec == "" {
			sec = "unknown (id " + strconv.Itoa(int(p.id)) + ")"
		}
		p.err = &Error{Section: sec, Offset: at, Reason: fmt.Sprintf(format, args...)}
	}
	p.pos = p.end
}

func (p *parser) byte() byte {
	if p.pos >= p.end {
		p.fail(p.pos, "unexpected end of the %s", p.in)
		return 0
	}
	c := p.b[p.pos]
	p.pos++
	return c
}

// u32 reads an unsigned LEB128 integer of at most 32 bits, as wazero
// does: at most 5 bytes, the unused bits of the last zero.
func (p *parser) u32() uint32 {
	at := p.pos
	var v uint32
	for i := 0; i < 5; i++ {
		c := p.byte()
		if p.err != nil {
			return 0
		}
		if c < 0x80 {
			if i == 4 && c&0xf0 != 0 {
				break
			}
			return v | uint32(c)<<(7*i)
		}
		v |= uint32(c&0x7f) << (7 * i)
	}
	p.fail(at, "integer overflows 32 bits")
	return 0
}

// signed skips a signed LEB128 integer of at most maxBytes bytes.
func (p *parser) signed(maxBytes int) {
	at := p.pos
	for i := 0; i < maxBytes && p.err == nil; i++ {
		if p.byte() < 0x80 {
			return
		}
	}
	p.fail(at, "integer longer than %d bytes", maxBytes)
}

// count reads the count of a vector of what, each item at least minSize
// bytes, and refuses it over the bytes left or over limit.
func (p *parser) count(what string, minSize int, limit uint32) int {
	at := p.pos
	n := p.u32()
	if p.err != nil {
		return 0
	}
	if left := p.end - p.pos; uint64(n)*uint64(minSize) > uint64(left) {
		p.fail(at, "%d %s claimed, but only %d bytes follow in the %s (%s take at least %d each)", n, what, left, p.in, what, minSize)
		return 0
	}
	if n > limit {
		p.fail(at, "%d %s, more than the %d allowed", n, what, limit)
		return 0
	}
	return int(n)
}

// bytes skips a byte string of n bytes (its length at byte at): what,
// followed by index unless that is negative.
func (p *parser) bytes(at int, n uint32, what string, index int) []byte {
	if left := p.end - p.pos; uint64(n) > uint64(left) {
		if index >= 0 {
			what += " " + strconv.Itoa(index)
		}
		p.fail(at, "%s of %d bytes claimed, but only %d bytes follow in the %s", what, n, left, p.in)
		return nil
	}
	s := p.b[p.pos : p.pos+int(n)]
	p.pos += int(n)
	return s
}

func (p *parser) name(what string) []byte {
	at := p.pos
	n := p.u32()
	if p.err != nil {
		return nil
	}
	return p.bytes(at, n, what, -1)
}

// limits reads the limits of a table or a memory as wazero does and
// returns the minimum.
func (p *parser) limits() uint32 {
	at := p.pos
	switch flag := p.byte(); flag {
	case 0x00, 0x02:
		return p.u32()
	case 0x01, 0x03:
		min := p.u32()
		p.u32() // maximum
		return min
	default:
		if p.err == nil {
			p.fail(at, "limits flag 0x%02x is not 0x00 to 0x03", flag)
		}
		return 0
	}
}

// constExpr reads a constant expression: one instruction of those wazero
// accepts, then end.
func (p *parser) constExpr() {
	at := p.pos
	switch op := p.byte(); op {
	case 0x41: // i32.const
		p.signed(5)
	case 0x42: // i64.const
		p.signed(10)
	case 0x43: // f32.const
		p.bytes(at, 4, "an f32 constant", -1)
	case 0x44: // f64.const
		p.bytes(at, 8, "an f64 constant", -1)
	case 0x23, 0xd2: // global.get, ref.func
		p.u32()
	case 0xd0: // ref.null
		p.byte()
	case 0xfd: // v128.const, its opcode one byte as wazero reads it
		if sub := p.byte(); sub != 0x0c && p.err == nil {
			p.fail(at, "constant expression has vector instruction 0x%02x, not v128.const", sub)
		}
		p.bytes(at, 16, "a v128 constant", -1)
	default:
		if p.err == nil {
			p.fail(at, "constant expression has instruction 0x%02x", op)
		}
	}
	if end := p.byte(); end != 0x0b && p.err == nil {
		p.fail(p.pos-1, "constant expression does not end after one instruction")
	}
}

func (p *parser) custom() {
	name := p.name("a custom section's name")
	if string(name) != "name" {
		p.pos = p.end // wazero copies the rest, at most the section's bytes
		return
	}
	p.sec = `custom "name"`
	// wazero reads the known subsections as they come, whatever size
	// they claim: each must end where it says it does, so that wazero
	// reads what Check read.
	for p.pos < p.end && p.err == nil {
		at := p.pos
		id := p.byte()
		size := p.u32()
		if left := p.end - p.pos; p.err == nil && uint64(size) > uint64(left) {
			p.fail(at, "subsection %d of %d bytes claimed, but only %d bytes follow in the section", id, size, left)
		}
		if p.err != nil {
			return
		}
		end, sectionEnd := p.pos+int(size), p.end
		p.end, p.in = end, "subsection"
		switch id {
		case 0: // module name
			p.name("the module's name")
		case 1: // function names
			p.nameMap("function names", maxFunctions)
		case 2: // local names
			n := p.count("functions with local names", 2, maxFunctions)
			for i := 0; i < n && p.err == nil; i++ {
				p.u32()
				p.nameMap("local names", maxParams+maxLocals)
			}
		default:
			p.pos = end
		}
		if p.err == nil && p.pos != end {
			p.fail(p.pos, "%d bytes left over at the end of subsection %d", end-p.pos, id)
		}
		p.pos, p.end, p.in = end, sectionEnd, "section"
	}
}

func (p *parser) nameMap(what string, limit uint32) {
	n := p.count(what, 2, limit)
	for i := 0; i < n && p.err == nil; i++ {
		p.u32()
		p.name("a name")
	}
}

func (p *parser) types() {
	n := p.count("types", 3, maxTypes)
	for i := 0; i < n && p.err == nil; i++ {
		at := p.pos
		if form := p.byte(); form != 0x60 && p.err == nil {
			p.fail(at, "type %d is not a function type (form 0x%02x)", i, form)
		}
		p.pos += p.count("parameters", 1, maxParams) // one byte each, checked by count
		p.pos += p.count("results", 1, maxResults)
	}
}

func (p *parser) imports() {
	n := p.count("imports", 4, maxImports)
	for i := 0; i < n && p.err == nil; i++ {
		p.name("an import's module name")
		p.name("an import's name")
		at := p.pos
		switch kind := p.byte(); kind {
		case 0: // function
			p.u32()
		case 1: // table
			p.byte()
			p.limits()
		case 2: // memory
			p.limits()
		case 3: // global
			p.byte()
			p.byte()
		case 4: // tag: wazero stops here, refusing the kind
			p.byte()
			p.u32()
		default:
			if p.err == nil {
				p.fail(at, "import %d has unknown kind %d", i, kind)
			}
		}
	}
}

func (p *parser) exports() {
	n := p.count("exports", 3, maxExports)
	for i := 0; i < n && p.err == nil; i++ {
		p.name("an export's name")
		at := p.pos
		if kind := p.byte(); kind > 3 && p.err == nil {
			p.fail(at, "export %d has unknown kind %d", i, kind)
		}
		p.u32()
	}
}

func (p *parser) elements() {
	n := p.count("element segments", 3, maxElements)
	for i := 0; i < n && p.err == nil; i++ {
		at := p.pos
		prefix := p.u32()
		if prefix == 2 || prefix == 6 {
			p.u32() // table index
		}
		if prefix == 0 || prefix == 2 || prefix == 4 || prefix == 6 {
			p.constExpr() // offset
		}
		switch prefix {
		case 0, 1, 2, 3: // function indexes
			if prefix != 0 {
				p.byte() // element kind
			}
			m := p.count("function indexes", 1, maxTableEntries)
			for j := 0; j < m && p.err == nil; j++ {
				p.u32()
			}
		case 4, 5, 6, 7: // constant expressions
			if prefix != 4 {
				p.byte() // reference type
			}
			m := p.count("element expressions", 3, maxTableEntries)
			for j := 0; j < m && p.err == nil; j++ {
				p.constExpr()
			}
		default:
			if p.err == nil {
				p.fail(at, "element segment %d has unknown prefix %d", i, prefix)
			}
		}
	}
}

func (p *parser) code() {
	n := p.count("function bodies", 3, maxFunctions)
	for i := 0; i < n && p.err == nil; i++ {
		at := p.pos
		size := p.u32()
		body := p.bytes(at, size, "function body", i)
		if p.err != nil {
			return
		}
		// Read the body's local declarations within it.
		after, sectionEnd := p.pos, p.end
		p.pos, p.end, p.in = p.pos-len(body), p.pos, "function body"
		decls := p.count("local declarations", 2, math.MaxUint32)
		var locals uint64
		for j := 0; j < decls && p.err == nil; j++ {
			at := p.pos
			n := uint64(p.u32())
			p.byte() // value type
			locals += n
			p.locals += n
			switch {
			case p.err != nil:
			case locals > maxLocals:
				p.fail(at, "function body %d declares more than the %d locals allowed", i, maxLocals)
			case p.locals > maxModuleLocals:
				p.fail(at, "function body %d brings the locals declared to more than the %d allowed in a module", i, maxModuleLocals)
			}
		}
		p.pos, p.end, p.in = after, sectionEnd, "section"
	}
}

func (p *parser) data() {
	n := p.count("data segments", 2, maxData)
	for i := 0; i < n && p.err == nil; i++ {
		at := p.pos
		switch prefix := p.u32(); prefix {
		case 0:
			p.constExpr()
		case 1:
		case 2:
			p.u32() // memory index
			p.constExpr()
		default:
			if p.err == nil {
				p.fail(at, "data segment %d has unknown prefix %d", i, prefix)
			}
		}
		at = p.pos
		size := p.u32()
		if p.err == nil {
			p.bytes(at, size, "data segment", i)
		}
	}
}
