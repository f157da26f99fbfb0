//go:build wasip1

// Command notes is the process notes:notes:examples: it keeps notes in
// its package's store, each note's text in file ID.md of drive "notes"
// and an entry for it in database "index" (key ID, value
// {"title":first line,"bytes":n,"updated":unix ns}). Requests are JSON:
//
//	{"op":"put","id":"ID","text":"..."}  → {"ok":true}
//	{"op":"get","id":"ID"}               → the text, or {"error":"no such note"}
//	{"op":"list"}                        → [{"id":…,"title":…,"bytes":…,"updated":…}, …] by id
//	{"op":"delete","id":"ID"}            → {"ok":true}, or {"error":"no such note"}
//	{"op":"share","to":"ADDRESS"}        → {"ok":true} once ADDRESS answered a request
//	                                       carrying notes' read capabilities on both
//
// IDs are 1 to 64 of [a-z0-9-]. Anything wrong is answered
// {"error":"…"}; the process goes on.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weftos/weft/sdk/go/weft"
)

func init() { weft.Run(run) }

func main() {}

// maxTitle bounds the title kept in the index, in bytes: a note of one
// long line still has an index entry far below the store's value limit.
const maxTitle = 256

// shareTimeout is how long share waits for the other process's answer.
const shareTimeout = 5 * time.Second

var (
	drive *weft.FileDrive
	index *weft.Database
)

func run() error {
	var err error
	if drive, err = weft.OpenDrive("notes"); err != nil {
		return fmt.Errorf("notes: open drive notes: %w", err)
	}
	if index, err = weft.OpenKV("index"); err != nil {
		return fmt.Errorf("notes: open database index: %w", err)
	}
	return weft.Loop(handle)
}

type request struct {
	Op   string `json:"op"`
	ID   string `json:"id"`
	Text string `json:"text"`
	To   string `json:"to"`
}

// entry is a note's index entry; list answers them with their ids.
type entry struct {
	ID      string `json:"id,omitempty"`
	Title   string `json:"title"`
	Bytes   int    `json:"bytes"`
	Updated int64  `json:"updated"`
}

// errNoNote is the answer for an id the notes do not have.
var errNoNote = errors.New("no such note")

func handle(msg *weft.Message) error {
	if !msg.IsRequest() {
		return nil
	}
	body, err := serve(msg.Body)
	if err != nil {
		body, _ = json.Marshal(struct {
			Error string `json:"error"`
		}{err.Error()})
	}
	if !msg.WantsResponse {
		return nil
	}
	return msg.Respond(weft.Response{Body: body})
}

var ok = []byte(`{"ok":true}`)

// serve performs one request and returns the answer's body.
func serve(body []byte) ([]byte, error) {
	var r request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("bad request: %v", err)
	}
	switch r.Op {
	case "put", "get", "delete":
		if err := checkID(r.ID); err != nil {
			return nil, err
		}
	}
	switch r.Op {
	case "put":
		return ok, put(r.ID, r.Text)
	case "get":
		return get(r.ID)
	case "list":
		return list()
	case "delete":
		return ok, remove(r.ID)
	case "share":
		return ok, share(r.To)
	}
	return nil, fmt.Errorf("unknown op %q (want put, get, list, delete or share)", r.Op)
}

func checkID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("bad id %q: 1 to 64 of [a-z0-9-]", id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("bad id %q: 1 to 64 of [a-z0-9-]", id)
		}
	}
	return nil
}

func file(id string) string { return id + ".md" }

// put writes the note's file, then its index entry.
func put(id, text string) error {
	if err := drive.WriteFile(file(id), []byte(text)); err != nil {
		return fmt.Errorf("put %s: %w", id, err)
	}
	e, err := json.Marshal(entry{Title: title(text), Bytes: len(text), Updated: time.Now().UnixNano()})
	if err != nil {
		return err
	}
	if err := index.Set([]byte(id), e); err != nil {
		return fmt.Errorf("put %s: index: %w", id, err)
	}
	return nil
}

// title is text's first line, cut to maxTitle bytes on a rune boundary.
func title(text string) string {
	t, _, _ := strings.Cut(text, "\n")
	t = strings.TrimSuffix(t, "\r")
	if len(t) > maxTitle {
		t = t[:maxTitle]
		for len(t) > 0 && !utf8.ValidString(t) {
			t = t[:len(t)-1]
		}
	}
	return t
}

func get(id string) ([]byte, error) {
	b, err := drive.ReadFile(file(id))
	if errors.Is(err, weft.ErrNotFound) {
		return nil, errNoNote
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	return b, nil
}

// list answers every index entry, in id order (the index's key order),
// reading the index a page at a time.
func list() ([]byte, error) {
	entries := []entry{}
	sc := index.Scan(nil)
	for k, v := range sc.All() {
		var e entry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("list: index entry %s: %v", k, err)
		}
		e.ID = string(k)
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return json.Marshal(entries)
}

// remove deletes the note's file and index entry; an id that has
// neither is no note.
func remove(id string) error {
	_, err := index.Get([]byte(id))
	indexed := err == nil
	if err != nil && !errors.Is(err, weft.ErrNoKey) {
		return fmt.Errorf("delete %s: index: %w", id, err)
	}
	err = drive.Remove(file(id))
	if errors.Is(err, weft.ErrNotFound) {
		if !indexed {
			return errNoNote
		}
	} else if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if err := index.Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete %s: index: %w", id, err)
	}
	return nil
}

// share sends to a request carrying notes' read capabilities on the
// drive and the index, and waits for its answer: the way notes lets
// another process read the notes.
func share(to string) error {
	if to == "" {
		return errors.New(`share: "to" names no process`)
	}
	_, err := weft.Request(to).
		Attach(drive.ReadCapability(), index.ReadCapability()).
		Expects(shareTimeout).
		SendAndAwait()
	if err != nil {
		return fmt.Errorf("share with %s: %w", to, err)
	}
	return nil
}
