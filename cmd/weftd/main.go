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
	"syscall"

	"github.com/weftos/weft/daemon"
)

// version is the build's version, set with
// -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: weftd [flags]

weftd runs one weft node in the foreground: it holds the data dir, loads
the node key, opens the store and starts the kernel, and stops them in
order on SIGINT or SIGTERM (a second signal exits at once). Logs go to
stderr.

Flags:
  --data-dir DIR       the node's data (key, database, lock); created with
                       mode 0700 if missing (default %s)
  --log-level LEVEL    debug, info, warn or error (default info)
  --log-format FORMAT  text or json (default text)
  --version            print the version and exit
  --help               print this help and exit

Example:
  weftd --data-dir ./.weft
`

// doMain runs weftd with args (without the program name) and returns its
// exit code: 0 after a clean stop, 1 if the node failed, 2 for bad usage.
func doMain(args []string, stdout, stderr io.Writer) int {
	cfg := daemon.DefaultConfig()
	cfg.Version = version

	fs := flag.NewFlagSet("weftd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(fs.Output(), usage, daemon.DefaultDataDir) }
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "")
	fs.Func("log-level", "", func(s string) error {
		switch s {
		case "debug", "info", "warn", "error":
			return cfg.LogLevel.UnmarshalText([]byte(s))
		}
		return errors.New("want debug, info, warn or error")
	})
	fs.Func("log-format", "", func(s string) error {
		switch s {
		case "text", "json":
			cfg.LogFormat = s
			return nil
		}
		return errors.New("want text or json")
	})
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
		fmt.Fprintf(stdout, usage, daemon.DefaultDataDir)
		return 0
	case *showVersion:
		fmt.Fprintln(stdout, "weftd", version)
		return 0
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "weftd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
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

	if err := daemon.New(cfg, logger).Run(ctx, nil); err != nil {
		logger.Error("weftd failed", "err", err)
		return 1
	}
	return 0
}
