// Command weftd runs one weft node in the foreground until SIGINT or
// SIGTERM. Its logs go to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weftos/weft/daemon"
)

// version is the build's version, set with
// -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: weftd [flags]
       weftd restore --target … --key FILE --data-dir DIR [flags]
       weftd backup-key FILE

weftd runs one weft node in the foreground: it holds the data dir, loads
the node key, opens the store, brings back the installed packages'
processes and serves the control API, until SIGINT or SIGTERM (a second
signal exits at once). Logs go to stderr.

Settings come from the defaults, then the config file (--config), then
these flags; weftd --print-default-config shows every key, documented.

Flags:
  --config FILE            read settings from this TOML file
  --data-dir DIR           the node's data (default %s)
  --socket PATH            the control API's Unix socket (default %s)
  --listen ADDR            also serve the API on TCP, with TLS and a token
                           (needs tls_cert and tls_key in the config, or
                           --tls-cert and --tls-key)
  --tls-cert FILE          the TCP listener's certificate (PEM)
  --tls-key FILE           the TCP listener's private key (PEM)
  --metrics-listen ADDR    serve Prometheus metrics on this loopback address
  --p2p-listen MULTIADDR   listen for other nodes here instead of the config's
                           [network] listen (repeatable; /ip4/127.0.0.1/tcp/0
                           for a free port); "none" turns the network off
  --drivers-dir DIR        where drivers declared with a relative path are,
                           with their SHA256SUMS (default %s)
  --install PATH           install this package directory or zip at start,
                           approving what it requests (repeatable)
  --limit KEY=VALUE        set one [limits] key, e.g. mailbox_length=2048 or
                           guest_cpu_time=2s (repeatable)
  --log-level LEVEL        debug, info, warn or error (default info)
  --log-format FORMAT      text or json (default text)
  --shutdown-timeout DUR   how long stopping may take (default 10s)
  --print-config           print the settings in force, as TOML, and exit
  --print-default-config   print the documented default config and exit
  --version                print the version and exit
  --help                   print this help and exit

weftd restore brings a node back from a backup, offline (weftd restore
--help); weftd backup-key makes a backup key file.

Exit status: 0 after a clean stop, 1 if the node failed, 2 for bad usage
or a bad config.

Examples:
  weftd --data-dir ./.weft --socket ./.weft/weftd.sock
  weftd --config /etc/weft/weftd.toml
  weftd --data-dir ./.weft --install build/examples/echo --limit mailbox_length=64
  weftd --data-dir ./b --socket ./b/weftd.sock --p2p-listen /ip4/127.0.0.1/tcp/0
`

// doMain runs weftd with args (without the program name) and returns its
// exit code: 0 after a clean stop, 1 if the node failed, 2 for bad usage.
func doMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "restore":
			return doRestore(args[1:], stdout, stderr)
		case "backup-key":
			return doBackupKey(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("weftd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), usage, daemon.DefaultDataDir, daemon.DefaultSocket, daemon.DefaultDriversDir)
	}

	// Flags are applied after the config file, in the order given.
	var apply []func(*daemon.Config) error
	later := func(name string, set func(*daemon.Config, string) error) {
		fs.Func(name, "", func(v string) error {
			apply = append(apply, func(c *daemon.Config) error { return set(c, v) })
			return nil
		})
	}
	str := func(name string, field func(*daemon.Config) *string) {
		later(name, func(c *daemon.Config, v string) error { *field(c) = v; return nil })
	}
	configFile := fs.String("config", "", "")
	str("data-dir", func(c *daemon.Config) *string { return &c.DataDir })
	str("socket", func(c *daemon.Config) *string { return &c.Socket })
	str("listen", func(c *daemon.Config) *string { return &c.Listen })
	str("tls-cert", func(c *daemon.Config) *string { return &c.TLSCert })
	str("tls-key", func(c *daemon.Config) *string { return &c.TLSKey })
	str("metrics-listen", func(c *daemon.Config) *string { return &c.MetricsListen })
	str("drivers-dir", func(c *daemon.Config) *string { return &c.DriversDir })
	var p2pListen []string
	fs.Func("p2p-listen", "", func(v string) error { p2pListen = append(p2pListen, v); return nil })
	later("install", func(c *daemon.Config, v string) error { c.Install = append(c.Install, v); return nil })
	later("limit", func(c *daemon.Config, v string) error {
		key, value, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("--limit %q: want KEY=VALUE", v)
		}
		return c.SetLimit(key, value)
	})
	later("log-level", func(c *daemon.Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			return c.LogLevel.UnmarshalText([]byte(v))
		}
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", v)
	})
	str("log-format", func(c *daemon.Config) *string { return &c.LogFormat })
	later("shutdown-timeout", func(c *daemon.Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("--shutdown-timeout: %w", err)
		}
		c.ShutdownTimeout = d
		return nil
	})
	printConfig := fs.Bool("print-config", false, "")
	printDefault := fs.Bool("print-default-config", false, "")
	showVersion := fs.Bool("version", false, "")
	// Declared, so that help goes to stdout with status 0 rather than
	// being the flag package's error.
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		return 2 // fs printed the error and the usage
	}
	switch {
	case *help:
		fmt.Fprintf(stdout, usage, daemon.DefaultDataDir, daemon.DefaultSocket, daemon.DefaultDriversDir)
		return 0
	case *showVersion:
		fmt.Fprintln(stdout, "weftd", version)
		return 0
	case *printDefault:
		stdout.Write(daemon.DefaultConfigFile)
		return 0
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "weftd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	cfg := daemon.DefaultConfig()
	cfg.Version = version
	if *configFile != "" {
		if err := daemon.LoadConfig(&cfg, *configFile); err != nil {
			fmt.Fprintln(stderr, "weftd:", err)
			return 2
		}
		abs, err := filepath.Abs(*configFile)
		if err != nil {
			fmt.Fprintln(stderr, "weftd:", err)
			return 2
		}
		cfg.ConfigFile = abs
	}
	for _, f := range apply {
		if err := f(&cfg); err != nil {
			fmt.Fprintln(stderr, "weftd:", err)
			return 2
		}
	}
	if err := cfg.SetP2PListen(p2pListen); err != nil {
		fmt.Fprintln(stderr, "weftd:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "weftd:", err)
		return 2
	}
	if *printConfig {
		b, err := cfg.MarshalTOML()
		if err != nil {
			fmt.Fprintln(stderr, "weftd:", err)
			return 1
		}
		stdout.Write(b)
		return 0
	}

	logger, err := daemon.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default action, so that a
		// second one ends the process at once.
		<-ctx.Done()
		stop()
	}()

	if err := daemon.New(cfg, logger).Run(ctx, func(i daemon.Info) { printReady(stdout, i) }); err != nil {
		logger.Error("weftd failed", "err", err)
		var inUse *daemon.InUseError
		if errors.As(err, &inUse) {
			fmt.Fprintln(stderr, "weftd:", inUse)
		}
		return 1
	}
	return 0
}

// printReady tells a person at a terminal that the node is up and how to
// talk to it: the one line on stdout (logs go to stderr).
func printReady(w io.Writer, i daemon.Info) {
	weft := "weft"
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "weft"); fileExists(p) {
			weft = p
		}
	}
	fmt.Fprintf(w, "weftd ready: node %s; talk to it with\n  export WEFT_SOCKET=%s\n  %s status\n", i.NodeID, i.Socket, weft)
	if len(i.P2PListen) == 0 {
		return
	}
	addr := i.P2PListen[0]
	for _, a := range i.P2PListen {
		// Another machine's node needs an address other than loopback.
		if !strings.HasPrefix(a, "/ip4/127.") && !strings.HasPrefix(a, "/ip6/::1/") {
			addr = a
			break
		}
	}
	fmt.Fprintf(w, "other nodes connect to it with\n  %s peers connect %s\n", weft, addr)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
