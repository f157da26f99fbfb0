package driver

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Serve serves d as a driver subprocess of weftd, and returns when weftd
// stops it. Run by hand (not by weftd), it says so and exits. A driver
// whose parent is gone exits too, so that no driver outlives its weftd
// (weftd also asks the kernel to kill it when weftd dies).
func Serve(d Driver) {
	go exitWithParent(os.Getppid(), time.Second)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginSet(d),
		GRPCServer:      newGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "driver",
			Level:      hclog.Warn,
			Output:     os.Stderr,
			JSONFormat: true,
		}),
	})
}

// exitWithParent exits the process once its parent is no longer ppid.
func exitWithParent(ppid int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			os.Exit(3)
		}
	}
}
