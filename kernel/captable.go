package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// capRecord is the kernel's record of one capability: every copy any
// process holds is this one record, so revoking it reaches every copy.
// Records are verified once, where they enter the node; inside the node a
// send checks records, not signatures. Fields other than holders and pins
// never change; holders and pins are guarded by Kernel.capMu.
type capRecord struct {
	cap     Capability
	key     string // EncodeCapability(cap)
	holders map[*proc]struct{}
	pins    int // reasons to keep the record with no holders (a live issuer's messaging capability)

	// sig is the signature: given for an admitted record, made by keys on
	// first need for a minted one (signature). Inside the node nothing
	// reads it; a capability is signed when it first leaves the kernel
	// (to disk, to the API), which spares every spawn an Ed25519 signing
	// of the child's messaging capability (a tenth of a C process's spawn;
	// docs/performance.md).
	sigOnce sync.Once
	sig     []byte
	keys    Keyring
}

// signature returns the record's signature, signing it the first time.
func (r *capRecord) signature() []byte {
	r.sigOnce.Do(func() {
		if r.sig == nil {
			r.sig = r.keys.Sign([]byte(r.key))
		}
	})
	return r.sig
}

func (r *capRecord) signed() SignedCapability {
	return SignedCapability{Capability: r.cap, Signature: slices.Clone(r.signature())}
}

// normalize resolves "our" in the issuer, checks the issuer and puts the
// params in canonical form.
func (k *Kernel) normalize(c Capability) (Capability, string, error) {
	c.Issuer = k.resolve(c.Issuer)
	if err := c.Issuer.Validate(); err != nil {
		return Capability{}, "", fmt.Errorf("%w: capability issuer: %w", ErrInvalid, err)
	}
	params, err := CanonicalParams(c.Params, k.lim.MaxCapabilityParamsBytes)
	if err != nil {
		return Capability{}, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c.Params = params
	return c, string(EncodeCapability(c)), nil
}

// mintLocked returns the record of a capability issued on this node,
// making it if it is new (signed on first need). k.capMu is held; c is
// normalized.
func (k *Kernel) mintLocked(c Capability) (*capRecord, error) {
	if c.Issuer.Node != k.node {
		return nil, fmt.Errorf("%w: only the issuer's node can mint %s", ErrNotPermitted, c)
	}
	key := string(EncodeCapability(c))
	if rec := k.caps[key]; rec != nil {
		return rec, nil
	}
	rec := &capRecord{cap: c, key: key, keys: k.keys, holders: make(map[*proc]struct{})}
	k.caps[key] = rec
	return rec, nil
}

// admitLocked checks a signed capability entering the node and returns its
// record (verifySignedLocked). k.capMu is held.
func (k *Kernel) admitLocked(sc SignedCapability) (*capRecord, error) {
	if err := k.verifySignedLocked(sc); err != nil {
		return nil, err
	}
	key := EncodeCapability(sc.Capability)
	if rec := k.caps[string(key)]; rec != nil {
		return rec, nil
	}
	rec := &capRecord{cap: sc.Capability, key: string(key), sig: slices.Clone(sc.Signature), holders: make(map[*proc]struct{})}
	k.caps[rec.key] = rec
	return rec, nil
}

// verifySignedLocked checks a signed capability entering the node. Params
// must already be canonical and the issuer a real node id; the signature
// must verify with the issuer node's key; one issued here must not be
// revoked (ErrRevoked). k.capMu is held.
func (k *Kernel) verifySignedLocked(sc SignedCapability) error {
	if sc.Issuer.Node == OurNode {
		return fmt.Errorf("%w: signed capability names its issuer's node as %q, not by id", ErrInvalid, OurNode)
	}
	if err := sc.Issuer.Validate(); err != nil {
		return fmt.Errorf("%w: capability issuer: %w", ErrForged, err)
	}
	canon, err := CanonicalParams(sc.Params, k.lim.MaxCapabilityParamsBytes)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrForged, err)
	}
	if canon != sc.Params {
		return fmt.Errorf("%w: params of %s are not in canonical form", ErrForged, sc.Issuer)
	}
	key := EncodeCapability(sc.Capability)
	if !k.keys.Verify(sc.Issuer.Node, key, sc.Signature) {
		return fmt.Errorf("%w: %s", ErrForged, sc.Capability)
	}
	if sc.Issuer.Node == k.node {
		if _, ok := k.rm.revoked[string(key)]; ok {
			return fmt.Errorf("%w: %s", ErrRevoked, sc.Capability)
		}
	}
	return nil
}

// grantLocked gives p a copy of rec and reports whether p lacked it.
// k.capMu is held.
func (k *Kernel) grantLocked(rec *capRecord, p *proc) bool {
	if _, ok := rec.holders[p]; ok {
		return false
	}
	rec.holders[p] = struct{}{}
	p.mu.Lock()
	p.caps[rec] = struct{}{}
	p.mu.Unlock()
	return true
}

// dropLocked takes p's copy of rec away. k.capMu is held.
func (k *Kernel) dropLocked(rec *capRecord, p *proc) bool {
	if _, ok := rec.holders[p]; !ok {
		return false
	}
	delete(rec.holders, p)
	p.mu.Lock()
	delete(p.caps, rec)
	p.mu.Unlock()
	k.collectLocked(rec)
	return true
}

// collectLocked forgets a record nobody holds or pins.
func (k *Kernel) collectLocked(rec *capRecord) {
	if len(rec.holders) == 0 && rec.pins <= 0 && k.caps[rec.key] == rec {
		delete(k.caps, rec.key)
	}
}

// grantAll gives t every record it lacks, persists t if that changed it,
// and returns the records that were new to t.
func (k *Kernel) grantAll(recs []*capRecord, t *proc) []*capRecord {
	var added []*capRecord
	k.capMu.Lock()
	for _, rec := range recs {
		if k.grantLocked(rec, t) {
			added = append(added, rec)
		}
	}
	k.capMu.Unlock()
	if len(added) > 0 {
		k.persistLogged(t)
	}
	return added
}

func (k *Kernel) dropAll(recs []*capRecord, t *proc) {
	k.capMu.Lock()
	for _, rec := range recs {
		k.dropLocked(rec, t)
	}
	k.capMu.Unlock()
	k.persistLogged(t)
}

// resolveAttach turns the capabilities p attaches to a message into
// records: p must hold each, or issue it (the kernel then mints it); the
// operator may attach any capability issued on this node. A message with
// none costs nothing (the send path's common case).
func (k *Kernel) resolveAttach(p *proc, target Address, cs []Capability) ([]*capRecord, []Capability, error) {
	if len(cs) == 0 {
		return nil, nil, nil
	}
	recs := make([]*capRecord, 0, len(cs))
	out := make([]Capability, 0, len(cs))
	k.capMu.Lock()
	defer k.capMu.Unlock()
	for _, c := range cs {
		nc, key, err := k.normalize(c)
		if err != nil {
			return nil, nil, fmt.Errorf("kernel: send to %s: attach: %w", target, err)
		}
		rec := k.caps[key]
		switch {
		case rec != nil && p.holds(rec):
		case nc.Issuer == p.addr || (p == k.operator && nc.Issuer.Node == k.node):
			if rec, err = k.mintLocked(nc); err != nil {
				return nil, nil, fmt.Errorf("kernel: send to %s: attach: %w", target, err)
			}
			k.unrevokeLocked(nc, key) // issued again
		default:
			return nil, nil, k.sendErr(ErrNoCapability, target, nil, fmt.Sprintf("%s cannot attach %s: it neither holds nor issues it", p.id, nc))
		}
		recs = append(recs, rec)
		out = append(out, rec.cap)
	}
	return recs, out, nil
}

// Grant gives process to a capability, as the node's owner: one issued on
// this node is minted if need be; one issued elsewhere must already be
// held by some process here (it entered through ImportCapability).
func (k *Kernel) Grant(c Capability, to ProcessId) error {
	t := k.lookup(to)
	if t == nil {
		return fmt.Errorf("kernel: grant: %s: %w", to, ErrNotFound)
	}
	_, err := k.grantTo(c, []*proc{t})
	return err
}

// grantTo gives c to each of ps that lacks it, as the node's owner (see
// Grant), persists those, and returns how many they were.
func (k *Kernel) grantTo(c Capability, ps []*proc) (int, error) {
	k.capMu.Lock()
	nc, key, err := k.normalize(c)
	if err != nil {
		k.capMu.Unlock()
		return 0, fmt.Errorf("kernel: grant: %w", err)
	}
	rec := k.caps[key]
	if rec == nil {
		if rec, err = k.mintLocked(nc); err != nil {
			k.capMu.Unlock()
			return 0, fmt.Errorf("kernel: grant: %w", err)
		}
	}
	if nc.Issuer.Node == k.node {
		k.unrevokeLocked(nc, key) // granted again
	}
	var added []*proc
	for _, p := range ps {
		if k.grantLocked(rec, p) {
			added = append(added, p)
		}
	}
	if len(added) == 0 {
		k.collectLocked(rec) // minted for nobody
	}
	k.capMu.Unlock()
	var errs []error
	for _, p := range added {
		if err := k.persist(p); err != nil {
			errs = append(errs, err)
		}
	}
	return len(added), errors.Join(errs...)
}

// Revoke takes every copy of a capability away from every holder, as the
// node's owner. A capability issued on this node is also marked revoked:
// its copies on other nodes are refused here at use, and the nodes it was
// sent to are told to drop them (docs/capabilities.md). Revocation is of
// the capability's value: granting or minting the same one again clears
// the mark.
func (k *Kernel) Revoke(c Capability) error {
	_, err := k.revoke(nil, c)
	return err
}

// RevokeCopies is Revoke, reporting how many copies it took away.
func (k *Kernel) RevokeCopies(c Capability) (int, error) {
	return k.revoke(nil, c)
}

// revoke removes every copy of c here; by is the process asking (nil: the
// owner), which must be c's issuer. One issued here is marked revoked and
// the nodes it went to are told. It reports how many copies went here.
func (k *Kernel) revoke(by *proc, c Capability) (int, error) {
	k.capMu.Lock()
	nc, key, err := k.normalize(c)
	if err != nil {
		k.capMu.Unlock()
		return 0, fmt.Errorf("kernel: revoke: %w", err)
	}
	if by != nil && nc.Issuer != by.addr {
		k.capMu.Unlock()
		return 0, fmt.Errorf("kernel: revoke %s: %w: only its issuer or the node's owner may revoke it", nc, ErrNotPermitted)
	}
	var nodes []string
	var markErr error
	if nc.Issuer.Node == k.node {
		nodes, markErr = k.markRevokedLocked(nc, key)
	}
	var holders []*proc
	if rec := k.caps[key]; rec != nil {
		holders = k.dropHoldersLocked(rec)
	}
	k.capMu.Unlock()
	for _, h := range holders {
		k.persistLogged(h)
	}
	k.tellRevoked(nc, nodes)
	return len(holders), markErr
}

// ImportCapability admits a signed capability from outside the node (the
// network, an API client) and gives it to a process. The signature must
// verify with the issuer node's key; a forgery is refused with ErrForged.
func (k *Kernel) ImportCapability(to ProcessId, sc SignedCapability) error {
	t := k.lookup(to)
	if t == nil {
		return fmt.Errorf("kernel: import capability: %s: %w", to, ErrNotFound)
	}
	k.capMu.Lock()
	rec, err := k.admitLocked(sc)
	if err != nil {
		k.capMu.Unlock()
		return fmt.Errorf("kernel: import capability for %s: %w", to, err)
	}
	added := k.grantLocked(rec, t)
	k.capMu.Unlock()
	if added {
		return k.persist(t)
	}
	return nil
}

// CapabilitiesOf lists the capabilities a process holds, signed, sorted.
func (k *Kernel) CapabilitiesOf(id ProcessId) ([]SignedCapability, error) {
	p := k.lookup(id)
	if p == nil {
		return nil, fmt.Errorf("kernel: capabilities of %s: %w", id, ErrNotFound)
	}
	return p.signedCaps(), nil
}

// Sign returns c with this node's signature, for a capability issued here
// (used to hand capabilities to other nodes and to test the edges).
func (k *Kernel) Sign(c Capability) (SignedCapability, error) {
	nc, _, err := k.normalize(c)
	if err != nil {
		return SignedCapability{}, err
	}
	if nc.Issuer.Node != k.node {
		return SignedCapability{}, fmt.Errorf("kernel: sign %s: %w: issued by another node", nc, ErrNotPermitted)
	}
	return SignedCapability{Capability: nc, Signature: k.keys.Sign(EncodeCapability(nc))}, nil
}

func (p *proc) signedCaps() []SignedCapability {
	p.mu.Lock()
	out := make([]SignedCapability, 0, len(p.caps))
	for rec := range p.caps {
		out = append(out, rec.signed())
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b SignedCapability) int {
		return bytes.Compare(EncodeCapability(a.Capability), EncodeCapability(b.Capability))
	})
	return out
}

func (p *proc) capList() []Capability {
	p.mu.Lock()
	out := make([]Capability, 0, len(p.caps))
	for rec := range p.caps {
		out = append(out, rec.cap)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Capability) int {
		if c := strings.Compare(a.Issuer.String(), b.Issuer.String()); c != 0 {
			return c
		}
		return strings.Compare(a.Params, b.Params)
	})
	return out
}

// HasExact reports whether the process holds c, whose issuer must be
// resolved (no "our") and whose params must be in canonical form already:
// the check costs one map lookup, for callers on a hot path that build
// their capabilities canonically (the store). Any other form is never
// held; Has normalises first.
func (h *Handle) HasExact(c Capability) bool {
	k := h.p.k
	key := string(EncodeCapability(c))
	k.capMu.Lock()
	rec := k.caps[key]
	k.capMu.Unlock()
	return rec != nil && h.p.holds(rec)
}

// GrantPackage gives c to every process of package pkg in the table,
// running or not, as the node's owner (see Grant). It returns how many
// processes lacked it.
func (k *Kernel) GrantPackage(c Capability, pkg PackageId) (int, error) {
	k.mu.RLock()
	var ps []*proc
	for id, p := range k.procs {
		if id.PackageId() == pkg {
			ps = append(ps, p)
		}
	}
	k.mu.RUnlock()
	return k.grantTo(c, ps)
}
