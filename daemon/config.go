package daemon

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/store"
)

// DefaultConfigFile is weftd's configuration file with every key at its
// default, each documented: what `weftd --print-default-config` prints and
// what the Debian package installs as /etc/weft/weftd.toml.
//
//go:embed weftd.toml
var DefaultConfigFile []byte

// Defaults of an installed weftd.
const (
	DefaultDataDir         = "/var/lib/weft"
	DefaultSocket          = "/run/weft/weftd.sock"
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures one node; weftd.toml documents every key.
// DefaultConfig fills every field.
type Config struct {
	DataDir         string         `toml:"data_dir"`
	Socket          string         `toml:"socket"`
	Listen          string         `toml:"listen"`
	TLSCert         string         `toml:"tls_cert"`
	TLSKey          string         `toml:"tls_key"`
	TokenFile       string         `toml:"token_file"`
	MetricsListen   string         `toml:"metrics_listen"`
	LogLevel        slog.Level     `toml:"log_level"`
	LogFormat       string         `toml:"log_format"`
	ShutdownTimeout time.Duration  `toml:"shutdown_timeout"`
	Install         []string       `toml:"install"`
	PackageQuota    int64          `toml:"package_quota"`
	API             ConnLimits     `toml:"api"`
	Limits          kernel.Limits  `toml:"limits"`
	DriversDir      string         `toml:"drivers_dir"`
	Drivers         []DriverConfig `toml:"drivers"`
	Backup          BackupConfig   `toml:"backup"`
	Network         NetworkConfig  `toml:"network"`

	// ConfigFile is the file the config was read from ("" for none), for
	// backups to hold. It is set by the binary, not read from a file.
	ConfigFile string `toml:"-"`
	// Version is the weftd build, for the logs and the API. It is set by
	// the binary, not read from a config file.
	Version string `toml:"-"`
}

// DefaultConfig returns the configuration of an installed weftd.
func DefaultConfig() Config {
	return Config{
		DataDir:         DefaultDataDir,
		Socket:          DefaultSocket,
		LogLevel:        slog.LevelInfo,
		LogFormat:       "text",
		ShutdownTimeout: DefaultShutdownTimeout,
		Install:         []string{},
		PackageQuota:    store.DefaultPackageQuota,
		API:             DefaultConnLimits(),
		Limits:          kernel.DefaultLimits(),
		DriversDir:      DefaultDriversDir,
		Drivers:         DefaultDrivers(),
		Backup:          DefaultBackupConfig(),
		Network:         DefaultNetworkConfig(),
		Version:         "dev",
	}
}

// ParseConfig reads a configuration file over cfg: keys present replace
// cfg's values, keys absent leave them. An unknown key or a value of the
// wrong type is an error naming it; name is the file's, for messages.
func ParseConfig(cfg *Config, name string, data []byte) error {
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			// Not perr.ErrorWithPosition: toml v1.6.0 panics in it on
			// some inputs (an unterminated string at the end of the
			// file, found by FuzzParseConfig).
			where := fmt.Sprintf("line %d, column %d", perr.Position.Line, perr.Position.Col)
			if perr.LastKey != "" {
				where += ", key " + perr.LastKey
			}
			return fmt.Errorf("config %s: %s: %s", name, where, perr.Message)
		}
		return fmt.Errorf("config %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown key %s", name, strings.Join(keys, ", "))
	}
	return nil
}

// LoadConfig reads the configuration file at path over cfg.
func LoadConfig(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return ParseConfig(cfg, path, data)
}

// Validate checks what can be checked before the node starts.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("config: data_dir is empty")
	}
	if c.Socket == "" {
		return errors.New("config: socket is empty")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("config: log_format %q: want text or json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("config: shutdown_timeout %v: want a positive duration", c.ShutdownTimeout)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("config: listen %q: %w", c.Listen, err)
		}
		if c.TLSCert == "" || c.TLSKey == "" {
			return fmt.Errorf("config: listen %q needs tls_cert and tls_key: the TCP listener serves only TLS", c.Listen)
		}
	} else if c.TLSCert != "" || c.TLSKey != "" {
		return errors.New("config: tls_cert and tls_key are set but listen is not")
	}
	if c.MetricsListen != "" {
		if err := checkLoopback(c.MetricsListen); err != nil {
			return fmt.Errorf("config: metrics_listen: %w", err)
		}
	}
	if c.PackageQuota <= 0 {
		return fmt.Errorf("config: package_quota %d: want a positive number of bytes", c.PackageQuota)
	}
	if slices.Contains(c.Install, "") {
		return errors.New("config: install lists an empty path")
	}
	if _, err := c.decls(); err != nil {
		return err
	}
	if err := c.Backup.validate(); err != nil {
		return err
	}
	if err := c.Network.validate(); err != nil {
		return err
	}
	if err := c.API.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Limits.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("config: limits: %w", err)
	}
	return nil
}

// checkLoopback refuses an address whose host is not a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address (127.0.0.1, [::1] or localhost): metrics are served on loopback only", addr)
}

// MarshalTOML writes c as a configuration file.
func (c Config) MarshalTOML() ([]byte, error) {
	type file Config // without this method
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	if err := enc.Encode(file(c)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SetLimit sets one limit by its config key (as in the [limits] table),
// from a flag's value: a TOML value, or a bare string such as 5s.
func (c *Config) SetLimit(key, value string) error {
	if key == "" || strings.ContainsAny(key, " \t\n=[].\"'#") {
		return fmt.Errorf("limit %q: not a limits key", key)
	}
	parse := func(v string) error {
		next := *c
		if err := ParseConfig(&next, "--limit", []byte("[limits]\n"+key+" = "+v+"\n")); err != nil {
			return err
		}
		c.Limits = next.Limits
		return nil
	}
	if err := parse(value); err != nil {
		// A bare string, such as a duration, in quotes.
		if qerr := parse(strconv.Quote(value)); qerr != nil {
			return fmt.Errorf("limit %s=%s: %w", key, value, err)
		}
	}
	return nil
}
