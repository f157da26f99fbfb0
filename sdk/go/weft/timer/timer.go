// Package timer is the Go guest's side of the in-tree timer driver,
// timer:drivers:weft (docs/drivers.md, "The timer driver"): setting a
// durable timer is one call, which attaches the process's messaging
// capability so that the driver may deliver the timer when it fires, and
// Parse tells a firing from other requests. It is apart from package
// weft so that guests that set no timer do not link encoding/json.
package timer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weftos/weft/sdk/go/weft"
)

// Driver is the timer driver's address.
const Driver = "our@timer:drivers:weft"

// Metadata is the metadata of the request that delivers a firing.
const Metadata = "timer"

// AckTimeout bounds how long Set waits for the driver to say the timer
// is stored.
const AckTimeout = 10 * time.Second

// Set asks the timer driver to deliver, after d, a request to this
// process whose metadata is Metadata and whose body is the firing (see
// Parse), carrying data (nil for none; anything encoding/json encodes).
// id names the timer among this process's (1 to 128 bytes of UTF-8; ""
// lets the driver name it); Set returns the id. It returns once the
// driver has stored the timer: it is durable from then on, outliving
// restarts of the driver and of the node, firing late if it must. The
// driver's refusals (an id this process has pending, too many timers)
// come back as errors.
//
// Set attaches this process's messaging capability, so that the driver
// may deliver the firing. For the driver to reach the process after a
// restart of the node, its package grants it the capability in its
// manifest ("grant_capabilities": ["timer:drivers:weft"]).
func Set(id string, d time.Duration, data any) (string, error) {
	if d < 0 {
		return "", errors.New("timer: negative duration")
	}
	return set(id, map[string]any{"in": d.String()}, data)
}

// SetAt is Set for a time rather than a duration; a time past fires at
// once.
func SetAt(id string, at time.Time, data any) (string, error) {
	return set(id, map[string]any{"at": at.UTC().Format(time.RFC3339Nano)}, data)
}

func set(id string, req map[string]any, data any) (string, error) {
	req["op"], req["ack"] = "set", true
	if id != "" {
		req["id"] = id
	}
	if data != nil {
		req["data"] = data
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	m, err := weft.Request(Driver).Body(body).Attach(weft.Messaging(weft.Self())).Expects(AckTimeout).SendAndAwait()
	if err != nil {
		return "", err
	}
	var ans struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(m.Body, &ans); err != nil {
		return "", fmt.Errorf("timer: the driver answered %q: %w", m.Body, err)
	}
	if ans.Error != "" {
		return "", errors.New("timer: " + ans.Error)
	}
	return ans.ID, nil
}

// Cancel cancels this process's timer id, waiting for the driver's
// answer (at most timeout): false when no such timer was pending.
func Cancel(id string, timeout time.Duration) (bool, error) {
	body, err := json.Marshal(map[string]string{"op": "cancel", "id": id})
	if err != nil {
		return false, err
	}
	m, err := weft.Request(Driver).Body(body).Expects(timeout).SendAndAwait()
	if err != nil {
		return false, err
	}
	var ans struct {
		Cancelled bool   `json:"cancelled"`
		Error     string `json:"error"`
	}
	if err := json.Unmarshal(m.Body, &ans); err != nil {
		return false, err
	}
	if ans.Error != "" {
		return false, errors.New("timer: " + ans.Error)
	}
	return ans.Cancelled, nil
}

// Fired is a timer's firing.
type Fired struct {
	ID    string    `json:"id"`
	Due   time.Time `json:"due"`
	Fired time.Time `json:"fired"`
	// LateMS is how long after Due it fired, in milliseconds: a timer due
	// while the node was down fires at its next start.
	LateMS int64 `json:"late_ms"`
	// Data is what Set was given, as JSON; empty for none.
	Data json.RawMessage `json:"data,omitempty"`
}

// Parse returns the firing m delivers, and whether m is one: a request
// from the timer driver with metadata Metadata.
func Parse(m *weft.Message) (*Fired, bool) {
	if !m.IsRequest() || m.Metadata != Metadata || !strings.HasSuffix(m.Source, "@timer:drivers:weft") {
		return nil, false
	}
	var f Fired
	if err := json.Unmarshal(m.Body, &f); err != nil || f.ID == "" {
		return nil, false
	}
	return &f, true
}
