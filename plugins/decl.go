package plugins

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins/driver"
)

// Package is the package every driver's process is in: NAME:drivers:weft.
// No installed package can take it (the publisher weft is the node's).
var Package = kernel.PackageId{Package: "drivers", Publisher: "weft"}

// ID returns the process id of driver name.
func ID(name string) kernel.ProcessId {
	return kernel.ProcessId{Name: name, Package: Package.Package, Publisher: Package.Publisher}
}

// Limits bound a driver subprocess through rlimits; zero takes the
// default, and a negative value means no limit.
type Limits struct {
	// AddressSpace bounds its virtual memory (RLIMIT_AS), in bytes.
	AddressSpace int64
	// OpenFiles bounds its open file descriptors (RLIMIT_NOFILE).
	OpenFiles int64
	// CPUSeconds bounds the CPU time of one run (RLIMIT_CPU); past it the
	// driver is killed and its on_exit applies. Default none: a driver
	// runs for months, and the limit counts a run's whole life.
	CPUSeconds int64
}

// Default limits.
const (
	DefaultAddressSpace = 4 << 30
	DefaultOpenFiles    = 1024
)

// WithDefaults fills zero fields.
func (l Limits) WithDefaults() Limits {
	if l.AddressSpace == 0 {
		l.AddressSpace = DefaultAddressSpace
	}
	if l.OpenFiles == 0 {
		l.OpenFiles = DefaultOpenFiles
	}
	if l.CPUSeconds == 0 {
		l.CPUSeconds = -1
	}
	return l
}

// Decl declares one driver: what weftd runs, as whom, with what.
type Decl struct {
	// Name is the driver's process name: it runs as NAME:drivers:weft.
	Name string
	// Path is the driver's binary. Empty runs the driver in-process from
	// Factory instead.
	Path string
	// SHA256 is the binary's SHA-256, hex; required with Path. A binary
	// whose sum differs is refused.
	SHA256 string
	// Factory makes the driver in-process, when Path is empty.
	Factory func() driver.Driver
	// Public drivers take requests from every process; others only from
	// holders of their messaging capability.
	Public bool
	// Capabilities the driver holds, granted again at each start of the
	// node.
	Capabilities []kernel.Capability
	// Config is the driver's configuration, a JSON object.
	Config json.RawMessage
	// Limits of its subprocess.
	Limits Limits
	// HealthInterval is how often the driver's health is checked, and
	// HealthTimeout how long a check may take: a driver that hangs is
	// stopped within HealthInterval+HealthTimeout.
	HealthInterval, HealthTimeout time.Duration
	// StartTimeout bounds launching it and its Start.
	StartTimeout time.Duration
	// Unusable is set by whoever declares the driver when the declaration
	// cannot be used as it stands (its binary's checksum cannot be found):
	// the Manager lists the driver with this reason and does not start
	// it, and the rest of the node starts.
	Unusable error
}

// Defaults of a Decl's durations.
const (
	DefaultHealthInterval = 5 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultStartTimeout   = 10 * time.Second
)

// Validate checks d and fills its defaults.
func (d *Decl) Validate() error {
	id := ID(d.Name)
	if err := id.Validate(); err != nil {
		return fmt.Errorf("driver %q: name: %w", d.Name, err)
	}
	switch {
	case d.Path == "" && d.Factory == nil:
		return fmt.Errorf("driver %s: no binary (path)", d.Name)
	case d.Path != "" && d.Factory != nil:
		return fmt.Errorf("driver %s: both a binary and an in-process factory", d.Name)
	case d.Path != "" && !filepath.IsAbs(d.Path):
		return fmt.Errorf("driver %s: path %q is not absolute", d.Name, d.Path)
	}
	if d.Path != "" && d.Unusable == nil {
		sum, err := hex.DecodeString(d.SHA256)
		if err != nil || len(sum) != 32 {
			return fmt.Errorf("driver %s: sha256 %q is not 64 hex digits", d.Name, d.SHA256)
		}
	}
	if len(d.Config) == 0 {
		d.Config = json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(d.Config, &obj); err != nil || obj == nil {
		return fmt.Errorf("driver %s: config is not a JSON object", d.Name)
	}
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
		key string
	}{{&d.HealthInterval, DefaultHealthInterval, "health_interval"}, {&d.HealthTimeout, DefaultHealthTimeout, "health_timeout"}, {&d.StartTimeout, DefaultStartTimeout, "start_timeout"}} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 {
			return fmt.Errorf("driver %s: %s %v is negative", d.Name, f.key, *f.v)
		}
	}
	d.Limits = d.Limits.WithDefaults()
	return nil
}
