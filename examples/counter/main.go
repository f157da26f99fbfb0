//go:build wasip1

// Command counter is the process counter:counter:examples: every request
// adds one to a count kept in its state (so it survives restarts), and
// the answer is the new count in decimal.
package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/weftos/weft/sdk/go/weft"
)

func init() { weft.Run(run) }

func run() error {
	n, err := load()
	if err != nil {
		return err
	}
	for {
		msg, err := weft.Await()
		if err != nil {
			return err // ErrStopped: a clean exit
		}
		if !msg.IsRequest() {
			continue
		}
		n++
		text := []byte(strconv.FormatUint(n, 10))
		if err := weft.SetState(text); err != nil {
			return fmt.Errorf("counter: save %d: %w", n, err)
		}
		if msg.WantsResponse {
			if err := msg.Respond(weft.Response{Body: text}); err != nil {
				weft.Logf(weft.LevelWarn, "counter: answer %s: %v", msg.Source, err)
			}
		}
	}
}

// load returns the count saved in the state, 0 when there is none.
func load() (uint64, error) {
	b, err := weft.GetState()
	if errors.Is(err, weft.ErrNoState) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("counter: load: %w", err)
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counter: state %q is not a count: %w", b, err)
	}
	return n, nil
}

func main() {}
