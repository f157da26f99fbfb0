//go:build wasip1

// Command chain is the process chain:chain:examples, a middleware: it
// forwards every request to echo:echo:examples with inherit, so echo
// answers the original requester directly (A → chain → echo, echo
// answers A). It holds echo's messaging capability (its manifest asks
// for it), although echo is public too.
package main

import "github.com/weftos/weft/sdk/go/weft"

const next = "our@echo:echo:examples"

func init() { weft.Serve(handle) }

func handle(msg *weft.Message) error {
	if !msg.IsRequest() {
		return nil
	}
	// No Expects: the forwarded request takes over msg's id, reply-to
	// and timeout.
	_, err := weft.Request(next).Body(msg.Body).Metadata(msg.Metadata).Inherit().Send()
	return err
}

func main() {}
