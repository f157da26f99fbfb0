// Package deptest checks the direction of imports, so that the layering of
// docs/architecture.md is enforced by tests (after tailscale's
// tstest/deptest): a package lists what, outside the standard library, it
// may depend on, and the test fails on anything else.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// Allow reports whether a non-standard package may be depended on.
type Allow func(pkg string) bool

// Prefixes allows the listed import paths and everything below them.
func Prefixes(paths ...string) Allow {
	return func(pkg string) bool {
		for _, p := range paths {
			if pkg == p || strings.HasPrefix(pkg, p+"/") {
				return true
			}
		}
		return false
	}
}

// Exact allows only the listed import paths.
func Exact(paths ...string) Allow {
	return func(pkg string) bool {
		for _, p := range paths {
			if pkg == p {
				return true
			}
		}
		return false
	}
}

// Check fails t for every package outside the standard library that pkg
// depends on (itself excepted) and allow refuses. It also fails when go
// list does not name pkg itself, so that it cannot pass by looking at
// nothing.
func Check(t *testing.T, pkg string, allow Allow) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	var self bool
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == pkg:
			self = true
		case !allow(dep):
			t.Errorf("%s depends on %s", pkg, dep)
		}
	}
	if !self {
		t.Fatalf("go list -deps %s did not list the package itself:\n%s", pkg, out)
	}
}
