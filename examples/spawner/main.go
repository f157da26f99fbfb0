//go:build wasip1

// Command spawner is the process spawner:spawner:examples: for every
// request it spawns a child from its own module (/spawner.wasm) and
// forwards the request to it with inherit; the child answers the original
// requester (the body it got, with its own address as metadata) and
// exits. The module is both: it runs as the spawner when its process name
// is "spawner", and as a child otherwise.
package main

import (
	"fmt"
	"strings"

	"github.com/weftos/weft/sdk/go/weft"
)

func init() { weft.Run(run) }

func run() error {
	self := weft.Self()
	if name(self) == "spawner" {
		return weft.Loop(spawn)
	}
	return child(self)
}

// spawn hands msg to a new child.
func spawn(msg *weft.Message) error {
	if !msg.IsRequest() {
		return nil
	}
	id, err := weft.Spawn(weft.SpawnSpec{WasmPath: "/spawner.wasm"})
	if err != nil {
		return fmt.Errorf("spawner: spawn: %w", err)
	}
	if _, err := weft.Request(id).Body(msg.Body).Metadata(msg.Metadata).Inherit().Send(); err != nil {
		return fmt.Errorf("spawner: forward to %s: %w", id, err)
	}
	return nil
}

// child answers the first request it gets and exits.
func child(self string) error {
	for {
		msg, err := weft.Await()
		if err != nil {
			return err
		}
		if !msg.IsRequest() {
			continue
		}
		if msg.WantsResponse {
			return msg.Respond(weft.Response{Body: msg.Body, Metadata: self})
		}
		return nil
	}
}

// name returns the process name of an address node@name:package:publisher.
func name(addr string) string {
	_, pid, _ := strings.Cut(addr, "@")
	n, _, _ := strings.Cut(pid, ":")
	return n
}

func main() {}
