package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// OnExitKind says what happens when a process stops on its own (returns,
// crashes, or is killed by a guard). A kill by the owner or the parent,
// and the node stopping, never trigger it.
type OnExitKind uint8

const (
	OnExitNone     OnExitKind = iota // stay stopped
	OnExitRestart                    // start again, with exponential backoff
	OnExitRequests                   // send Requests in the process's name, then stay stopped
)

// MaxExitRequests bounds an on_exit request list.
const MaxExitRequests = 32

// OnExit is a process's exit policy.
type OnExit struct {
	Kind     OnExitKind
	Requests []ExitRequest
}

// ExitRequest is a request sent when a process dies. It expects no response.
type ExitRequest struct {
	Target   Address
	Body     []byte
	Metadata string
	Blob     *Blob
}

func (o OnExit) String() string {
	switch o.Kind {
	case OnExitNone:
		return "none"
	case OnExitRestart:
		return "restart"
	case OnExitRequests:
		return fmt.Sprintf("requests(%d)", len(o.Requests))
	}
	return fmt.Sprintf("OnExitKind(%d)", uint8(o.Kind))
}

func (o OnExit) validate(k *Kernel) error {
	switch o.Kind {
	case OnExitNone, OnExitRestart:
		if len(o.Requests) > 0 {
			return fmt.Errorf("%w: on_exit %s takes no requests", ErrInvalid, o)
		}
	case OnExitRequests:
		if len(o.Requests) > MaxExitRequests {
			return fmt.Errorf("%w: on_exit has %d requests, at most %d allowed", ErrInvalid, len(o.Requests), MaxExitRequests)
		}
		for _, r := range o.Requests {
			if err := r.Target.Validate(); err != nil {
				return fmt.Errorf("%w: on_exit request: %w", ErrInvalid, err)
			}
			if err := k.checkSizes(r.Target, r.Body, r.Metadata, r.Blob, 0, 0); err != nil {
				return fmt.Errorf("%w: on_exit request: %w", ErrInvalid, err)
			}
		}
	default:
		return fmt.Errorf("%w: unknown on_exit kind %d", ErrInvalid, o.Kind)
	}
	return nil
}

type exitRequestJSON struct {
	Target   string    `json:"target"`
	Body     []byte    `json:"body,omitempty"`
	Metadata string    `json:"metadata,omitempty"`
	Blob     *blobJSON `json:"blob,omitempty"`
}

type blobJSON struct {
	Mime  string `json:"mime,omitempty"`
	Bytes []byte `json:"bytes"`
}

// MarshalJSON encodes "none", "restart" or {"requests": [...]}.
func (o OnExit) MarshalJSON() ([]byte, error) {
	switch o.Kind {
	case OnExitNone:
		return []byte(`"none"`), nil
	case OnExitRestart:
		return []byte(`"restart"`), nil
	case OnExitRequests:
		rs := make([]exitRequestJSON, 0, len(o.Requests))
		for _, r := range o.Requests {
			j := exitRequestJSON{Target: r.Target.String(), Body: r.Body, Metadata: r.Metadata}
			if r.Blob != nil {
				j.Blob = &blobJSON{Mime: r.Blob.Mime, Bytes: r.Blob.Bytes}
			}
			rs = append(rs, j)
		}
		return json.Marshal(struct {
			Requests []exitRequestJSON `json:"requests"`
		}{rs})
	}
	return nil, fmt.Errorf("unknown on_exit kind %d", o.Kind)
}

// UnmarshalJSON is the inverse of MarshalJSON; unknown fields are refused.
func (o *OnExit) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "none":
			*o = OnExit{Kind: OnExitNone}
		case "restart":
			*o = OnExit{Kind: OnExitRestart}
		default:
			return fmt.Errorf("on_exit: unknown policy %q (want \"none\", \"restart\" or {\"requests\": [...]})", s)
		}
		return nil
	}
	var v struct {
		Requests []exitRequestJSON `json:"requests"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("on_exit: %w", err)
	}
	out := OnExit{Kind: OnExitRequests}
	for _, r := range v.Requests {
		a, err := ParseAddress(r.Target)
		if err != nil {
			return fmt.Errorf("on_exit request target: %w", err)
		}
		er := ExitRequest{Target: a, Body: r.Body, Metadata: r.Metadata}
		if r.Blob != nil {
			er.Blob = &Blob{Mime: r.Blob.Mime, Bytes: r.Blob.Bytes}
		}
		out.Requests = append(out.Requests, er)
	}
	*o = out
	return nil
}

// tableRecord is one persisted process (format version 1).
type tableRecord struct {
	Version int       `json:"v"`
	ID      string    `json:"id"`
	Public  bool      `json:"public,omitempty"`
	OnExit  OnExit    `json:"on_exit"`
	Data    []byte    `json:"data,omitempty"`
	Caps    []capJSON `json:"caps,omitempty"`
}

type capJSON struct {
	Issuer string `json:"issuer"`
	Params string `json:"params"`
	Sig    []byte `json:"sig"`
}

const tableVersion = 1

// persist writes p's table record if p is persisted and still registered.
// Records are written one at a time and each reflects the latest state.
func (k *Kernel) persist(p *proc) error {
	if !p.persist || k.table == nil {
		return nil
	}
	k.persistMu.Lock()
	defer k.persistMu.Unlock()
	if k.lookup(p.id) != p {
		return nil
	}
	rec := tableRecord{Version: tableVersion, ID: p.id.String(), Public: p.public, OnExit: p.onExit, Data: p.data}
	for _, sc := range p.signedCaps() {
		rec.Caps = append(rec.Caps, capJSON{Issuer: sc.Issuer.String(), Params: sc.Params, Sig: sc.Signature})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("kernel: encode table record of %s: %w", p.id, err)
	}
	if err := k.table.PutProcess(rec.ID, b); err != nil {
		return fmt.Errorf("kernel: persist %s: %w", p.id, err)
	}
	return nil
}

func (k *Kernel) persistLogged(p *proc) {
	if err := k.persist(p); err != nil {
		k.log.Error("persisting the process table failed", "process", p.id.String(), "err", err)
	}
}

// Resolver makes a Process again from the data it was started with.
type Resolver func(id ProcessId, data []byte) (Process, error)

// RestoreReport says what Restore did.
type RestoreReport struct {
	Started []ProcessId
	// Failed lists records that could not be brought back; they stay in
	// the table untouched.
	Failed map[string]error
	// Refused lists capabilities dropped because their signature did not
	// verify (or that were malformed), by process.
	Refused map[string][]error
}

// Restore starts every process in the persisted table, as they were:
// on_exit, public flag and the capabilities they held. Every stored
// capability's signature is checked; one that fails is dropped (and the
// record rewritten without it). Spawned children are never in the table.
func (k *Kernel) Restore(resolve Resolver) (RestoreReport, error) {
	rep := RestoreReport{Failed: map[string]error{}, Refused: map[string][]error{}}
	if k.table == nil {
		return rep, nil
	}
	recs, err := k.table.Processes()
	if err != nil {
		return rep, fmt.Errorf("kernel: restore: %w", err)
	}
	keys := make([]string, 0, len(recs))
	for key := range recs {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	type ready struct {
		spec Spec
		caps []*capRecord
	}
	var todo []ready
	for _, key := range keys {
		var rec tableRecord
		dec := json.NewDecoder(bytes.NewReader(recs[key]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			rep.Failed[key] = fmt.Errorf("decode table record: %w", err)
			continue
		}
		if rec.Version != tableVersion {
			rep.Failed[key] = fmt.Errorf("table record version %d, this kernel reads %d", rec.Version, tableVersion)
			continue
		}
		id, err := ParseProcessId(rec.ID)
		if err != nil || rec.ID != key {
			rep.Failed[key] = fmt.Errorf("table record names %q under key %q: %v", rec.ID, key, err)
			continue
		}
		proc, err := resolve(id, rec.Data)
		if err != nil {
			rep.Failed[key] = fmt.Errorf("make process: %w", err)
			continue
		}
		var held []*capRecord
		k.capMu.Lock()
		for _, c := range rec.Caps {
			issuer, err := ParseAddress(c.Issuer)
			if err != nil {
				rep.Refused[key] = append(rep.Refused[key], fmt.Errorf("%w: %w", ErrForged, err))
				continue
			}
			r, err := k.admitLocked(SignedCapability{Capability: Capability{Issuer: issuer, Params: c.Params}, Signature: c.Sig})
			if err != nil {
				rep.Refused[key] = append(rep.Refused[key], err)
				continue
			}
			r.pins++ // keep it until it is granted below
			held = append(held, r)
		}
		k.capMu.Unlock()
		todo = append(todo, ready{Spec{ID: id, Process: proc, OnExit: rec.OnExit, Public: rec.Public, Persist: true, Data: rec.Data}, held})
	}
	for key, errs := range rep.Refused {
		for _, e := range errs {
			k.log.Error("refused a stored capability", "process", key, "err", e)
		}
	}
	var started []*proc
	for _, t := range todo {
		p, err := k.register(nil, t.spec, true, t.caps)
		k.capMu.Lock()
		for _, r := range t.caps {
			r.pins--
			k.collectLocked(r)
		}
		k.capMu.Unlock()
		if err != nil {
			rep.Failed[t.spec.ID.String()] = err
			continue
		}
		started = append(started, p)
	}
	// Start them only once all are registered, so that none finds another
	// missing.
	for _, p := range started {
		k.startProc(p)
		rep.Started = append(rep.Started, p.id)
	}
	return rep, nil
}

func isExists(err error) bool { return errors.Is(err, ErrExists) }
