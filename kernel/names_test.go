package kernel

import (
	"errors"
	"strings"
	"testing"
)

func TestParseProcessId(t *testing.T) {
	good := []string{"echo:echo:examples", "a:b:c", "my-proc:pkg-1:weft.dev", "0:0:0", strings.Repeat("a", 64) + ":p:x"}
	for _, s := range good {
		p, err := ParseProcessId(s)
		if err != nil || p.String() != s {
			t.Errorf("ParseProcessId(%q) = %v, %v", s, p, err)
		}
	}
	bad := []struct{ in, part, reason string }{
		{"", "process id", "part(s)"},
		{"a:b", "process id", "want 3"},
		{"a:b:c:d", "process id", "want 3"},
		{":b:c", "process name", "empty"},
		{"a::c", "package", "empty"},
		{"a:b:", "publisher", "empty"},
		{"A:b:c", "process name", "'A'"},
		{"a.b:c:d", "process name", "'.'"},
		{"a:b.c:d", "package", "'.'"},
		{"a:b:c_d", "publisher", "'_'"},
		{"-a:b:c", "process name", "start or end"},
		{"a:b:c.", "publisher", "start or end"},
		{strings.Repeat("a", 65) + ":b:c", "process name", "65 bytes"},
		{"a:b:" + strings.Repeat("p", 254), "publisher", "254 bytes"},
		{"é:b:c", "process name", "not allowed"},
		{"a b:c:d", "process name", "' '"},
	}
	for _, c := range bad {
		_, err := ParseProcessId(c.in)
		var ne *NameError
		if !errors.As(err, &ne) || ne.Part != c.part || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("ParseProcessId(%q) = %v; want a %s error mentioning %q", c.in, err, c.part, c.reason)
		}
	}
}

func TestParseAddress(t *testing.T) {
	good := []struct {
		in   string
		node string
	}{
		{"our@echo:echo:examples", "our"},
		{"k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8@echo:echo:examples", "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"},
		{"alice.example@a:b:c", "alice.example"},
	}
	for _, c := range good {
		a, err := ParseAddress(c.in)
		if err != nil || a.Node != c.node || a.String() != c.in {
			t.Errorf("ParseAddress(%q) = %+v, %v", c.in, a, err)
		}
	}
	bad := []struct{ in, part string }{
		{"echo:echo:examples", "address"},
		{"@a:b:c", "node"},
		{"a@@b:c:d", "address"},
		{"a@b@c:d:e", "address"},
		{"Node@a:b:c", "node"},
		{"no_de@a:b:c", "node"},
		{"node@a:b", "process id"},
		{"node@a:B:c", "package"},
		{strings.Repeat("n", 254) + "@a:b:c", "node"},
	}
	for _, c := range bad {
		_, err := ParseAddress(c.in)
		var ne *NameError
		if !errors.As(err, &ne) || ne.Part != c.part {
			t.Errorf("ParseAddress(%q) = %v; want a %s error", c.in, err, c.part)
		}
	}
}

func TestParsePackageId(t *testing.T) {
	p, err := ParsePackageId("echo:examples")
	if err != nil || p != (PackageId{"echo", "examples"}) || p.String() != "echo:examples" {
		t.Fatalf("%v %v", p, err)
	}
	if pid("a:echo:examples").PackageId() != p {
		t.Fatal("PackageId of a process")
	}
	for _, s := range []string{"echo", "a:b:c", "Echo:x", "echo:", ":x", "e.cho:x"} {
		if _, err := ParsePackageId(s); err == nil {
			t.Errorf("ParsePackageId(%q) accepted", s)
		}
	}
}
