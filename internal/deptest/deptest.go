// Package deptest holds every package of the module to the imports that
// the layer table of docs/architecture.md allows it (after tailscale's
// tstest/deptest). The table is the one source: a package without a row,
// a row without a package, an import its row does not list, or a row
// that lists a package of its own layer or above, fails the test.
package deptest

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
)

// Header is the header row of the layer table, cell by cell.
var Header = []string{"layer", "package", "owns", "imports (besides the standard library)"}

// Layers ranks the layers of the node's code from the top down: a package
// may import only packages of a lower rank. Guest code (GOOS=wasip1)
// runs inside a process, not in the node: it may import only layer 0 and
// other guest packages. Test helpers may import any package, and no
// package may import them (tests may).
var Layers = map[string]float64{
	"main": 7, "top": 6, "3": 3, "2½": 2.5, "2": 2, "1½": 1.5, "1": 1, "½": 0.5, "0": 0,
	"guest": -1, "test": 8,
}

// A Rule is one row of the table: the packages it names and what they may
// import.
type Rule struct {
	Layer string
	// Packages are module-relative paths ("kernel", "cmd/weft/cli"); one
	// ending in "/..." names a folder and everything below it.
	Packages []string
	// Imports are module-relative package paths (as above) and external
	// module paths, which allow the module's packages too.
	Imports []string
	Line    int // in the document, for errors
}

// ParseTable reads the layer table from a Markdown document: the rows of
// the table whose header is Header. Every code span (`…`) in the package
// and imports cells is an entry; a trailing "/" is dropped.
func ParseTable(doc string) ([]Rule, error) {
	var rules []Rule
	in, found := false, false
	sc := bufio.NewScanner(strings.NewReader(doc))
	for line := 1; sc.Scan(); line++ {
		cells, ok := tableRow(sc.Text())
		switch {
		case !ok:
			in = false
		case slices.Equal(cells, Header):
			if found {
				return nil, fmt.Errorf("line %d: a second layer table", line)
			}
			in, found = true, true
		case in && strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// the delimiter row
		case in:
			if len(cells) != len(Header) {
				return nil, fmt.Errorf("line %d: %d cells, want %d", line, len(cells), len(Header))
			}
			if _, ok := Layers[cells[0]]; !ok {
				return nil, fmt.Errorf("line %d: unknown layer %q", line, cells[0])
			}
			r := Rule{Layer: cells[0], Packages: codeSpans(cells[1]), Imports: codeSpans(cells[3]), Line: line}
			if len(r.Packages) == 0 {
				return nil, fmt.Errorf("line %d: no package in `…`", line)
			}
			rules = append(rules, r)
		}
	}
	if !found {
		return nil, fmt.Errorf("no table with the header | %s |", strings.Join(Header, " | "))
	}
	return rules, nil
}

// tableRow splits a Markdown table row into its trimmed cells.
func tableRow(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '|' || s[len(s)-1] != '|' {
		return nil, false
	}
	cells := strings.Split(s[1:len(s)-1], "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells, true
}

// codeSpans returns the contents of s's code spans, trailing "/" dropped.
func codeSpans(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i+1:], '`')
		if j < 0 {
			return out
		}
		out = append(out, strings.TrimSuffix(s[i+1:i+1+j], "/"))
		s = s[i+j+2:]
	}
}

// matches reports whether pattern (a path, or a folder ending in "/...")
// names pkg.
func matches(pattern, pkg string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == dir || strings.HasPrefix(pkg, dir+"/")
	}
	return pkg == pattern
}

// Graph is the module's packages, module-relative, each with its direct
// imports: module-relative for the module's own, full paths for the rest
// (the standard library left out).
type Graph map[string][]string

// Check holds g to rules and returns every violation, in a stable order.
func Check(rules []Rule, g Graph) []error {
	var errs []error
	ruleOf := map[string]*Rule{}
	used := map[*Rule]bool{}
	for _, pkg := range sortedKeys(g) {
		var own []*Rule
		for i := range rules {
			if slices.ContainsFunc(rules[i].Packages, func(p string) bool { return matches(p, pkg) }) {
				own = append(own, &rules[i])
			}
		}
		switch len(own) {
		case 0:
			errs = append(errs, fmt.Errorf("%s has no row in the layer table: add one, with its layer and what it may import", pkg))
			continue
		case 1:
		default:
			errs = append(errs, fmt.Errorf("%s has rows on lines %d and %d of the layer table: keep one", pkg, own[0].Line, own[1].Line))
		}
		ruleOf[pkg] = own[0]
		used[own[0]] = true
	}

	// The table itself points down only.
	for i := range rules {
		r := &rules[i]
		for _, p := range r.Packages {
			if !slices.ContainsFunc(sortedKeys(g), func(pkg string) bool { return matches(p, pkg) }) {
				errs = append(errs, fmt.Errorf("line %d: %s is in the layer table but not in the module", r.Line, p))
			}
		}
		for _, imp := range r.Imports {
			if isExternal(imp) {
				if r.Layer == "guest" {
					errs = append(errs, fmt.Errorf("line %d: guest code may not import %s: a guest reaches nothing but the node's host functions", r.Line, imp))
				}
				continue
			}
			to := ruleOf[strings.TrimSuffix(imp, "/...")]
			if to == nil {
				errs = append(errs, fmt.Errorf("line %d: %s lists %s, which is no package of the module", r.Line, r.Packages[0], imp))
				continue
			}
			if !allowedEdge(r.Layer, to.Layer) {
				errs = append(errs, fmt.Errorf("line %d: %s (layer %s) lists %s (layer %s): imports point down only", r.Line, r.Packages[0], r.Layer, imp, to.Layer))
			}
		}
	}

	// Every package keeps to its row.
	for _, pkg := range sortedKeys(g) {
		r := ruleOf[pkg]
		if r == nil {
			continue
		}
		for _, imp := range g[pkg] {
			if !slices.ContainsFunc(r.Imports, func(p string) bool { return allows(p, imp) }) {
				errs = append(errs, fmt.Errorf("%s imports %s, which its row (line %d of the document) does not list", pkg, imp, r.Line))
			}
		}
	}
	return errs
}

// allowedEdge reports whether a package of layer from may import one of
// layer to.
func allowedEdge(from, to string) bool {
	switch {
	case to == "test":
		return false
	case from == "guest":
		return to == "guest" || to == "0"
	case to == "guest":
		return false
	}
	return Layers[to] < Layers[from]
}

// allows reports whether the import entry p allows imp: a module package
// (or folder) by path, an external module with its packages.
func allows(p, imp string) bool {
	if isExternal(p) {
		return imp == p || strings.HasPrefix(imp, p+"/")
	}
	return matches(p, imp)
}

// isExternal reports whether path is outside the module: its first
// element has a dot, as every module path but the standard library's.
func isExternal(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return strings.Contains(first, ".")
}

func sortedKeys(g Graph) []string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
