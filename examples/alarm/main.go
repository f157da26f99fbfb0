//go:build wasip1

// Command alarm is the process alarm:alarm:examples: it sets alarms
// through the timer driver (timer:drivers:weft) and keeps a log of the
// ones that fired in its package's database "alarms" (key: when it
// fired, RFC 3339, and its id; value: the alarm as JSON). Requests are
// JSON:
//
//	{"in":"2s","note":"tea"}             → {"id":"ID","due":"…"}, once the alarm is set, durably: fires in 2 s
//	{"at":"2026-12-03T18:00:00Z","note":"…"} → the same, at a time
//
// "id" names the alarm (default: one the process makes). A fired alarm
// is logged, and shows in `weft kv get alarm:examples alarms …`, or in
// weft kv's listing of the database. Alarms are durable: one due while
// the node is down fires at its next start, late, and its log entry says
// how late.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/weftos/weft/sdk/go/weft"
	"github.com/weftos/weft/sdk/go/weft/timer"
)

func init() { weft.Run(run) }

func main() {}

var alarms *weft.Database

func run() error {
	var err error
	if alarms, err = weft.OpenKV("alarms"); err != nil {
		return fmt.Errorf("alarm: open database alarms: %w", err)
	}
	return weft.Loop(handle)
}

type request struct {
	ID   string `json:"id"`
	In   string `json:"in"`
	At   string `json:"at"`
	Note string `json:"note"`
}

// entry is a fired alarm, as the log keeps it.
type entry struct {
	ID     string    `json:"id"`
	Note   string    `json:"note,omitempty"`
	Due    time.Time `json:"due"`
	Fired  time.Time `json:"fired"`
	LateMS int64     `json:"late_ms"`
}

func handle(msg *weft.Message) error {
	if f, ok := timer.Parse(msg); ok {
		return logFired(f)
	}
	if !msg.IsRequest() || !msg.WantsResponse {
		return nil
	}
	body, err := set(msg.Body)
	if err != nil {
		body, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return msg.Respond(weft.Response{Body: body})
}

// seq numbers the alarms this run names.
var seq int

func set(b []byte) ([]byte, error) {
	var r request
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("want {\"in\":\"2s\",\"note\":\"…\"}: %w", err)
	}
	if r.ID == "" {
		seq++
		r.ID = "a-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(seq)
	}
	data := map[string]string{"note": r.Note}
	var due time.Time
	switch {
	case r.In != "" && r.At == "":
		d, err := time.ParseDuration(r.In)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("in %q: want a duration such as 2s or 1h30m", r.In)
		}
		due = time.Now().Add(d)
		if _, err := timer.Set(r.ID, d, data); err != nil {
			return nil, err
		}
	case r.At != "" && r.In == "":
		at, err := time.Parse(time.RFC3339, r.At)
		if err != nil {
			return nil, fmt.Errorf("at %q: want an RFC 3339 time", r.At)
		}
		due = at
		if _, err := timer.SetAt(r.ID, at, data); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("give one of in and at")
	}
	return json.Marshal(map[string]string{"id": r.ID, "due": due.UTC().Format(time.RFC3339Nano)})
}

func logFired(f *timer.Fired) error {
	var data struct {
		Note string `json:"note"`
	}
	_ = json.Unmarshal(f.Data, &data)
	v, err := json.Marshal(entry{ID: f.ID, Note: data.Note, Due: f.Due, Fired: f.Fired, LateMS: f.LateMS})
	if err != nil {
		return err
	}
	key := f.Fired.UTC().Format(time.RFC3339Nano) + " " + f.ID
	if err := alarms.Set([]byte(key), v); err != nil {
		weft.Logf(weft.LevelError, "alarm: logging %s: %v", f.ID, err)
	}
	return nil
}
