package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/procstore"
)

// DefaultDriversDir is where the Debian package installs the in-tree
// drivers, with their checksums in SumsFile.
const DefaultDriversDir = "/usr/lib/weft/drivers"

// SumsFile is the file of a drivers directory that lists the SHA-256 of
// each binary in it, as sha256sum prints them ("HEX  NAME" a line). A
// driver declared with a path in the drivers directory and no sha256 is
// checked against it.
const SumsFile = "SHA256SUMS"

// DriverConfig is one [[drivers]] entry of weftd.toml (documented there).
type DriverConfig struct {
	Name           string             `toml:"name"`
	Path           string             `toml:"path"`
	SHA256         string             `toml:"sha256"`
	Public         bool               `toml:"public"`
	Capabilities   []CapabilityConfig `toml:"capabilities"`
	Config         map[string]any     `toml:"config"`
	Limits         DriverLimits       `toml:"limits"`
	HealthInterval time.Duration      `toml:"health_interval"`
	HealthTimeout  time.Duration      `toml:"health_timeout"`
	StartTimeout   time.Duration      `toml:"start_timeout"`
}

// CapabilityConfig is a capability a driver holds: issued by process,
// with params (a table; none for the process's messaging capability).
type CapabilityConfig struct {
	Process string         `toml:"process"`
	Params  map[string]any `toml:"params"`
}

// DriverLimits are a driver subprocess's rlimits; 0 takes the default,
// -1 means none.
type DriverLimits struct {
	AddressSpace int64 `toml:"address_space"`
	OpenFiles    int64 `toml:"open_files"`
	CPUSeconds   int64 `toml:"cpu_seconds"`
}

// DefaultDrivers are the in-tree drivers, declared unless weftd.toml
// declares [[drivers]] of its own.
func DefaultDrivers() []DriverConfig {
	return []DriverConfig{
		{Name: "timer", Path: "timer", Public: true},
		{Name: "http-client", Path: "http-client"},
	}
}

// decls turns the drivers of c into declarations: paths resolved against
// drivers_dir, checksums found in its SumsFile when not given.
func (c *Config) decls() ([]plugins.Decl, error) {
	var sums map[string]string
	var sumsErr error
	dir, err := filepath.Abs(c.DriversDir)
	if err != nil {
		return nil, fmt.Errorf("config: drivers_dir: %w", err)
	}
	out := make([]plugins.Decl, 0, len(c.Drivers))
	for i, dc := range c.Drivers {
		where := fmt.Sprintf("config: drivers[%d]", i)
		if dc.Name != "" {
			where = fmt.Sprintf("config: driver %q", dc.Name)
		}
		d := plugins.Decl{
			Name: dc.Name, Path: dc.Path, SHA256: strings.ToLower(dc.SHA256), Public: dc.Public,
			Limits:         plugins.Limits{AddressSpace: dc.Limits.AddressSpace, OpenFiles: dc.Limits.OpenFiles, CPUSeconds: dc.Limits.CPUSeconds},
			HealthInterval: dc.HealthInterval, HealthTimeout: dc.HealthTimeout, StartTimeout: dc.StartTimeout,
		}
		if d.Path == "" {
			return nil, fmt.Errorf("%s: path is empty", where)
		}
		if !filepath.IsAbs(d.Path) {
			d.Path = filepath.Join(dir, d.Path)
			if d.SHA256 == "" {
				if sums == nil {
					if sums, sumsErr = readSums(filepath.Join(dir, SumsFile)); sumsErr != nil {
						sums = map[string]string{}
					}
				}
				d.SHA256 = sums[filepath.Base(d.Path)]
				switch {
				case d.SHA256 != "":
				case sumsErr != nil:
					d.Unusable = fmt.Errorf("no sha256 in its declaration, and %w", sumsErr)
				default:
					d.Unusable = fmt.Errorf("no sha256 in its declaration, and %s lists no %s", filepath.Join(dir, SumsFile), filepath.Base(d.Path))
				}
			}
		} else if d.SHA256 == "" {
			return nil, fmt.Errorf("%s: sha256 is required for a binary outside drivers_dir", where)
		}
		if dc.Config != nil {
			b, err := json.Marshal(dc.Config)
			if err != nil {
				return nil, fmt.Errorf("%s: config: %w", where, err)
			}
			d.Config = b
		}
		for j, cc := range dc.Capabilities {
			cap, err := cc.capability()
			if err != nil {
				return nil, fmt.Errorf("%s: capabilities[%d]: %w", where, j, err)
			}
			d.Capabilities = append(d.Capabilities, cap)
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (cc CapabilityConfig) capability() (kernel.Capability, error) {
	pid, err := kernel.ParseProcessId(strings.TrimPrefix(cc.Process, kernel.OurNode+"@"))
	if err != nil {
		return kernel.Capability{}, fmt.Errorf("process: %w", err)
	}
	c := kernel.Capability{Issuer: kernel.Address{Node: kernel.OurNode, Process: pid}, Params: kernel.MessagingParams}
	if cc.Params != nil {
		b, err := json.Marshal(cc.Params)
		if err != nil {
			return kernel.Capability{}, fmt.Errorf("params: %w", err)
		}
		c.Params = string(b)
	}
	return c, nil
}

// readSums reads a sha256sum file: name → hex sum.
func readSums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		sum, name, ok := strings.Cut(text, " ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("%s: line %d is not \"SHA256  NAME\"", path, line)
		}
		sums[strings.TrimPrefix(strings.TrimSpace(name), "*")] = strings.ToLower(sum)
	}
	return sums, sc.Err()
}

// startDrivers starts the declared drivers (drivers:weft), after the
// kernel and before the installed packages, so that the packages' grants
// to drivers resolve. A driver refused (its binary's checksum, or
// missing) is logged and listed; the node starts without it.
func (n *node) startDrivers(ctx context.Context) error {
	decls, err := n.cfg.decls()
	if err != nil {
		return err
	}
	m, err := plugins.NewManager(n.k, procstore.New(n.k, n.st, n.drives, n.log), n.log, decls)
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return errors.Join(err, m.Stop(context.Background()))
	}
	n.drivers = m
	return nil
}

func (n *node) stopDrivers(ctx context.Context) error { return n.drivers.Stop(ctx) }
