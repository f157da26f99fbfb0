package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A flagSet parses a command's flags. Unlike the flag package it lets
// flags and positional arguments interleave (for a command's flags), takes
// both -x and --x, --x=v and --x v, and ends flags at "--". A lone "-" is
// a positional argument (send reads its body from stdin then).
type flagSet struct {
	defs map[string]*flagDef
	help bool
}

type flagDef struct {
	name   string // the first name, for messages
	isBool bool
	set    func(string) error
}

// newFlagSet returns a flagSet that knows --help and -h.
func newFlagSet() *flagSet {
	fs := &flagSet{defs: make(map[string]*flagDef)}
	fs.boolVar(&fs.help, "help", "h")
	return fs
}

func (fs *flagSet) define(d *flagDef, names []string) {
	d.name = names[0]
	for _, n := range names {
		fs.defs[n] = d
	}
}

func (fs *flagSet) boolVar(p *bool, names ...string) {
	fs.define(&flagDef{isBool: true, set: func(s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*p = v
		return nil
	}}, names)
}

func (fs *flagSet) stringVar(p *string, names ...string) {
	fs.define(&flagDef{set: func(s string) error { *p = s; return nil }}, names)
}

// stringsVar appends every value given, for a repeatable flag.
func (fs *flagSet) stringsVar(p *[]string, names ...string) {
	fs.define(&flagDef{set: func(s string) error { *p = append(*p, s); return nil }}, names)
}

// durationVar takes a Go duration ("5s", "1m30s"); "0" is zero.
func (fs *flagSet) durationVar(p *time.Duration, names ...string) {
	fs.define(&flagDef{set: func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 5s or 1m")
		}
		if v < 0 {
			return fmt.Errorf("want a duration of zero or more")
		}
		*p = v
		return nil
	}}, names)
}

// uintVar takes a whole number from 0 to limit.
func (fs *flagSet) uintVar(p *uint64, limit uint64, names ...string) {
	fs.define(&flagDef{set: func(s string) error {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v > limit {
			return fmt.Errorf("want a whole number from 0 to %d", limit)
		}
		*p = v
		return nil
	}}, names)
}

// parse sets the flags in args and returns the positional arguments. With
// interspersed, flags may follow positional arguments; without, parsing
// stops at the first positional argument, which is returned with all that
// follows it. The error, if any, is a *usageError.
func (fs *flagSet) parse(args []string, interspersed bool) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			if !interspersed {
				return append(pos, args[i:]...), nil
			}
			pos = append(pos, a)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		d, ok := fs.defs[name]
		if !ok || name == "" {
			return nil, &usageError{msg: fmt.Sprintf("unknown flag %s", a), flag: name}
		}
		switch {
		case hasValue:
		case d.isBool:
			value = "true"
		case i+1 < len(args):
			i++
			value = args[i]
		default:
			return nil, &usageError{msg: fmt.Sprintf("flag --%s needs a value", d.name)}
		}
		if err := d.set(value); err != nil {
			return nil, &usageError{msg: fmt.Sprintf("invalid value %q for --%s: %v", value, d.name, err)}
		}
	}
	return pos, nil
}
