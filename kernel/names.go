package kernel

import (
	"fmt"
	"strings"

	"github.com/weftos/weft/internal/echoed"
)

// Name limits. A node id derived from an Ed25519 key is 62 characters; a
// publisher may be a DNS name, hence the longer bound for both.
const (
	MaxNameLen      = 64  // process and package names
	MaxNodeLen      = 253 // node ids and aliases
	MaxPublisherLen = 253 // publishers
)

// OurNode is the alias for the local node in an Address.
const OurNode = "our"

// ProcessId names a process on a node: name:package:publisher.
type ProcessId struct {
	Name      string
	Package   string
	Publisher string
}

// PackageId names a package: package:publisher.
type PackageId struct {
	Package   string
	Publisher string
}

// Address is a process's global address: node@name:package:publisher.
type Address struct {
	Node    string
	Process ProcessId
}

// System process ids: the node's own processes live in package sys:weft.
var (
	KernelProcess   = ProcessId{"kernel", "sys", "weft"}
	OperatorProcess = ProcessId{"operator", "sys", "weft"}
)

// NameError says which part of a name is wrong and why.
type NameError struct {
	Input  string // the whole text being parsed, or the part alone
	Part   string // "process name", "package", "publisher", "node", ...
	Reason string
}

// Error repeats the input shortened by Truncate: a name comes from
// outside the node and may be of any length.
func (e *NameError) Error() string {
	return fmt.Sprintf("invalid %s in %q: %s", e.Part, echoed.Truncate(e.Input), e.Reason)
}

// String returns name:package:publisher.
func (p ProcessId) String() string {
	return p.Name + ":" + p.Package + ":" + p.Publisher
}

// PackageId returns the package the process belongs to.
func (p ProcessId) PackageId() PackageId { return PackageId{p.Package, p.Publisher} }

// Validate reports whether every part of p is well formed.
func (p ProcessId) Validate() error {
	s := p.String()
	if err := checkPart(s, "process name", p.Name, MaxNameLen, false); err != nil {
		return err
	}
	if err := checkPart(s, "package", p.Package, MaxNameLen, false); err != nil {
		return err
	}
	return checkPart(s, "publisher", p.Publisher, MaxPublisherLen, true)
}

// String returns package:publisher.
func (p PackageId) String() string { return p.Package + ":" + p.Publisher }

// Validate reports whether both parts of p are well formed.
func (p PackageId) Validate() error {
	s := p.String()
	if err := checkPart(s, "package", p.Package, MaxNameLen, false); err != nil {
		return err
	}
	return checkPart(s, "publisher", p.Publisher, MaxPublisherLen, true)
}

// String returns node@name:package:publisher.
func (a Address) String() string { return a.Node + "@" + a.Process.String() }

// Validate reports whether the node and the process id are well formed.
func (a Address) Validate() error {
	if err := ValidateNode(a.Node); err != nil {
		return err
	}
	return a.Process.Validate()
}

// ParseProcessId parses name:package:publisher.
func ParseProcessId(s string) (ProcessId, error) {
	parts, err := splitExact(s, ':', 3, "process id", "name:package:publisher")
	if err != nil {
		return ProcessId{}, err
	}
	p := ProcessId{parts[0], parts[1], parts[2]}
	if err := p.Validate(); err != nil {
		return ProcessId{}, err
	}
	return p, nil
}

// ParsePackageId parses package:publisher.
func ParsePackageId(s string) (PackageId, error) {
	parts, err := splitExact(s, ':', 2, "package id", "package:publisher")
	if err != nil {
		return PackageId{}, err
	}
	p := PackageId{parts[0], parts[1]}
	if err := p.Validate(); err != nil {
		return PackageId{}, err
	}
	return p, nil
}

// ParseAddress parses node@name:package:publisher. The node may be "our".
func ParseAddress(s string) (Address, error) {
	node, proc, ok := strings.Cut(s, "@")
	if !ok {
		return Address{}, &NameError{s, "address", "missing '@' (want node@name:package:publisher)"}
	}
	if strings.Contains(proc, "@") {
		return Address{}, &NameError{s, "address", "more than one '@'"}
	}
	if err := checkPart(s, "node", node, MaxNodeLen, true); err != nil {
		return Address{}, err
	}
	p, err := ParseProcessId(proc)
	if err != nil {
		return Address{}, err
	}
	return Address{Node: node, Process: p}, nil
}

// ValidateNode checks a node id or alias: [a-z0-9.-], 1 to MaxNodeLen
// characters. The kernel treats node ids as validated strings; deriving
// one from a key happens outside it.
func ValidateNode(node string) error {
	return checkPart(node, "node", node, MaxNodeLen, true)
}

func splitExact(s string, sep byte, n int, what, want string) ([]string, error) {
	parts := strings.Split(s, string(sep))
	if len(parts) != n {
		return nil, &NameError{s, what, fmt.Sprintf("has %d part(s) separated by %q, want %d (%s)", len(parts), sep, n, want)}
	}
	return parts, nil
}

// checkPart checks one part of a name: non-empty, at most max bytes, and
// only [a-z0-9-] (plus '.' when dots is set), never starting or ending
// with '-' or '.'.
func checkPart(input, part, s string, max int, dots bool) error {
	if s == "" {
		return &NameError{input, part, "empty"}
	}
	if len(s) > max {
		return &NameError{input, part, fmt.Sprintf("%d bytes long, at most %d allowed", len(s), max)}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case c == '.' && dots:
		default:
			allowed := "[a-z0-9-]"
			if dots {
				allowed = "[a-z0-9.-]"
			}
			return &NameError{input, part, fmt.Sprintf("character %q at offset %d is not allowed (only %s)", c, i, allowed)}
		}
	}
	if first, last := s[0], s[len(s)-1]; first == '-' || first == '.' || last == '-' || last == '.' {
		return &NameError{input, part, "must not start or end with '-' or '.'"}
	}
	return nil
}
