package kernel

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// RemoteMessage is a message crossing nodes: a request to a process on
// another node, or the answer (a response or an error) to one. Addresses
// carry node ids, never "our" or an alias. The transport carries it as it
// is; the receiving kernel checks everything again (Kernel.Receive).
type RemoteMessage struct {
	Kind Kind
	// ID is the request's id, chosen by the requester's node (its local
	// id plus a salt drawn at start, see remoteState.salt); an answer
	// carries the id of the request it answers. An answer is matched by
	// the node it came from and this id.
	ID     uint64
	Source Address
	Target Address
	// Inherit is set on a request or response that inherited from the
	// message its sender was handling.
	Inherit bool
	// ExpectsResponse is, on a request, how long the requester waits for
	// the answer; zero when it wants none.
	ExpectsResponse time.Duration
	Body            []byte
	Metadata        string
	// Capabilities are attached to the message, each signed by its
	// issuer's node; the receiver verifies every one and refuses the
	// message if one does not verify.
	Capabilities []SignedCapability
	// Messaging is, on a request to a process that is not public, the
	// sender's messaging capability for the target, signed by the
	// target's node, which checks it (and that it is not revoked).
	Messaging *SignedCapability
	Blob      *Blob
	// Error is set on KindError: its Kind and Detail travel (Target is
	// the address the request was sent to; Context stays on the
	// requester's node, which puts it back).
	Error *SendError
}

// Transport carries RemoteMessages to other nodes. The kernel calls it for
// every request to another node and for every answer to a request that
// came from one; the transport hands what arrives to Kernel.Receive and
// Kernel.ReceiveRevocation, and what it could not deliver to
// Kernel.Undelivered. Its methods must not block on the network. The
// kernel calls them holding none of its locks, so a transport may hand a
// message to the other kernel's Receive before it returns (the kernel's
// BenchmarkRemoteRoundTrip does).
type Transport interface {
	// Send queues m for node m.Target.Node and returns without waiting
	// for it to travel. An error returned is a *SendError (offline when
	// the node is unknown or its queue is full, too_large over the frame
	// limit) and nothing was sent; a failure found later is reported
	// through Kernel.Undelivered.
	Send(m *RemoteMessage) error
	// Revoke tells node, best effort, that c, issued on this node, is
	// revoked, so that it drops its copies.
	Revoke(node string, c SignedCapability)
}

// RevocationStore keeps the marks of capabilities issued on this node that
// were revoked, so that the node goes on refusing them after a restart
// (Config.Revocations). Add and Remove must be durable when they return;
// adding a mark that is there, or removing one that is not, is no error.
type RevocationStore interface {
	// Revocations lists every mark; New reads them once.
	Revocations() ([]Capability, error)
	AddRevocation(c Capability) error
	RemoveRevocation(c Capability) error
}

var (
	// ErrSpoofed is wrapped by Receive's refusal of a frame whose source
	// node is not the peer it came from (or is this node), and by
	// ReceiveRevocation's of a capability issued by another node than
	// the peer: the transport drops it, counts and logs it.
	ErrSpoofed = errors.New("source node is not the sending peer")
	// ErrRevoked is wrapped by the refusal of a capability issued on this
	// node that its issuer or the owner revoked, when a signed copy of it
	// comes back (Receive, ImportCapability).
	ErrRevoked = errors.New("capability revoked")
)

// remoteProcess stands for every remote requester on this node: it is the
// reply-to of each request that came from another node and expects a
// response. It is in no table; its answers are forwarded to the
// requester's node instead of going into a mailbox.
var remoteProcess = ProcessId{Name: "remote", Package: KernelProcess.Package, Publisher: KernelProcess.Publisher}

// inboundPerNode bounds, in multiples of max_pending_requests, the requests
// from one node that await their answers here: past it, the node's
// requests are refused with mailbox_full until some are answered.
const inboundPerNode = 16

// Bounds of what the kernel remembers of where the capabilities issued
// here went, for telling those nodes of a revocation: past them, the
// oldest entries (in no particular order) are forgotten and those nodes
// are not told; their copies are still refused here at use.
const (
	maxSentCaps     = 1 << 14 // capabilities
	maxSentCapNodes = 1 << 8  // nodes per capability
)

// remoteState is the kernel's part in messaging with other nodes.
type remoteState struct {
	tr atomic.Pointer[transportBox]

	// proc is remote:sys:weft (remoteProcess). Its pending map holds one
	// entry per request from another node awaiting its answer here,
	// keyed by a local id; inbound, guarded by proc.mu, says where that
	// answer goes.
	proc    *proc
	inbound map[uint64]inboundReq
	perNode map[string]int // entries of inbound by requester's node

	// Request ids on the wire are the local id plus salt, a random
	// number drawn when the kernel starts: local ids start again at 1
	// after a node restart (they also name spawned children, which keeps
	// those names short), but the wire ids of a new run do not meet
	// those of the last one, so an answer still on its way to a request
	// of the last run matches nothing now.
	salt uint64

	// out indexes the requests sent to other nodes that await their
	// answer: (node, wire id) → requester. byReq finds the key from the
	// requester's pending entry, so that every path that drops one
	// (answer, timeout, cancelled wait, the requester stopping) drops its
	// index entry too (unindex). n counts entries, so that a node
	// without remote traffic pays one atomic load there.
	outMu sync.Mutex
	out   map[outKey]outEntry
	byReq map[*Message]outKey
	n     atomic.Int64

	aliasMu     sync.Mutex
	aliases     atomic.Pointer[map[string]string] // nil when there are none
	checkNodeID func(string) error

	// Revocation marks of capabilities issued here (by encoding), and the
	// nodes each capability issued here was sent to; guarded by
	// Kernel.capMu.
	revStore RevocationStore
	revoked  map[string]struct{}
	sentTo   map[string]map[string]struct{}
}

type transportBox struct{ t Transport }

// inboundReq is where the answer to a request from another node goes.
type inboundReq struct {
	node      string  // the requester's node
	wireID    uint64  // the request's id there
	requester Address // who sent it
	target    Address // who it was sent to, here
}

type outKey struct {
	node string
	id   uint64
}

type outEntry struct {
	rsvp *proc    // who waits for the answer
	req  *Message // its pending entry
}

// initRemote sets up k's remote state from cfg. The revocation marks are
// read from cfg.Revocations.
func (k *Kernel) initRemote(cfg Config) error {
	r := &k.rm
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("kernel: draw the request id salt: %w", err)
	}
	r.salt = binary.LittleEndian.Uint64(b[:])
	r.inbound = make(map[uint64]inboundReq)
	r.perNode = make(map[string]int)
	r.out = make(map[outKey]outEntry)
	r.byReq = make(map[*Message]outKey)
	r.revoked = make(map[string]struct{})
	r.sentTo = make(map[string]map[string]struct{})
	r.checkNodeID = cfg.CheckNodeID
	if r.checkNodeID == nil {
		r.checkNodeID = checkNodeIDForm
	}
	r.proc = k.newProc(remoteProcess, nil, Spec{})
	r.proc.state = StateRunning
	r.proc.system = true
	r.revStore = cfg.Revocations
	if r.revStore != nil {
		marks, err := r.revStore.Revocations()
		if err != nil {
			return fmt.Errorf("kernel: load revocations: %w", err)
		}
		for _, c := range marks {
			nc, key, err := k.normalize(c)
			if err != nil || nc.Issuer.Node != k.node {
				k.log.Warn("ignoring a stored revocation", "capability", c.String(), "err", err)
				continue
			}
			r.revoked[key] = struct{}{}
		}
	}
	return nil
}

// checkNodeIDForm accepts the form identity.NodeID writes: "k" and 61
// lowercase base36 digits. (The kernel does not decode the key; the
// daemon may pass a stricter check in Config.CheckNodeID.)
func checkNodeIDForm(s string) error {
	const idLen = 62
	if len(s) != idLen || s[0] != 'k' {
		return fmt.Errorf("%q is not a node id: want k and %d base36 digits", s, idLen-1)
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return fmt.Errorf("%q is not a node id: character %q at offset %d", s, c, i)
		}
	}
	return nil
}

// SetTransport sets the transport that carries messages to other nodes. Set
// it once, before processes send; without one (nil) every other node is
// offline.
func (k *Kernel) SetTransport(t Transport) {
	if t == nil {
		k.rm.tr.Store(nil)
		return
	}
	k.rm.tr.Store(&transportBox{t})
}

func (k *Kernel) transport() Transport {
	if b := k.rm.tr.Load(); b != nil {
		return b.t
	}
	return nil
}

func (k *Kernel) wireID(id uint64) uint64 { return id + k.rm.salt }

// index records that request req, sent to node (or handed on there by
// inherit) and pending at rsvp, awaits its answer. rsvp.mu is held.
func (k *Kernel) index(node string, rsvp *proc, req *Message) {
	key := outKey{node, k.wireID(req.ID)}
	r := &k.rm
	r.outMu.Lock()
	r.out[key] = outEntry{rsvp: rsvp, req: req}
	r.byReq[req] = key
	r.n.Add(1)
	r.outMu.Unlock()
}

// unindex drops the index entry of pending request req, if it has one.
// The requester's mutex is held.
func (k *Kernel) unindex(req *Message) {
	r := &k.rm
	if r.n.Load() == 0 {
		return
	}
	r.outMu.Lock()
	if key, ok := r.byReq[req]; ok {
		delete(r.byReq, req)
		delete(r.out, key)
		r.n.Add(-1)
	}
	r.outMu.Unlock()
}

// takeOutstanding removes and returns the index entry of the request with
// wire id id sent to node.
func (k *Kernel) takeOutstanding(node string, id uint64) (outEntry, bool) {
	r := &k.rm
	r.outMu.Lock()
	defer r.outMu.Unlock()
	e, ok := r.out[outKey{node, id}]
	if ok {
		delete(r.out, outKey{node, id})
		delete(r.byReq, e.req)
		r.n.Add(-1)
	}
	return e, ok
}

// OutstandingRemote reports how many requests sent to other nodes await
// their answer.
func (k *Kernel) OutstandingRemote() int { return int(k.rm.n.Load()) }

// sendRemote sends r from p to target on another node. The network
// capability is checked first (the operator needs none); attached
// capabilities are resolved as for a local target and travel signed, and
// nothing is granted here. A request that expects a response is pending
// at p as a local one is, and indexed by (node, wire id).
func (k *Kernel) sendRemote(p *proc, gen uint64, r *Request, target Address, syncWait bool, reply chan *Message) (*Message, error) {
	if err := target.Validate(); err != nil {
		return nil, fmt.Errorf("kernel: send: %w: %w", ErrInvalid, err)
	}
	if p != k.operator {
		p.mu.Lock()
		_, ok := p.caps[k.netCap]
		p.mu.Unlock()
		if !ok {
			return nil, k.sendErr(ErrNoCapability, target, nil, fmt.Sprintf("%s does not hold the network capability", p.id))
		}
	}
	tr := k.transport()
	if tr == nil {
		return nil, k.sendErr(ErrOffline, target, nil, "node "+target.Node+" cannot be reached: this node has no network transport")
	}
	attach, attached, err := k.resolveAttach(p, target, r.Capabilities)
	if err != nil {
		return nil, err
	}
	k.capMu.Lock()
	msgRec := k.caps[string(EncodeCapability(Capability{Issuer: target, Params: MessagingParams}))]
	if msgRec != nil && !p.holds(msgRec) {
		msgRec = nil
	}
	k.capMu.Unlock()

	dst := target
	m := &Message{
		Kind:            KindRequest,
		src:             &p.addr,
		dst:             &dst,
		Inherit:         r.Inherit,
		ExpectsResponse: r.ExpectsResponse,
		Body:            r.Body,
		Metadata:        r.Metadata,
		Capabilities:    attached,
		Blob:            r.Blob,
	}
	wait := r.ExpectsResponse
	p.mu.Lock()
	if gen != 0 && (p.gen != gen || isClosed(p.stop)) {
		p.mu.Unlock()
		return nil, ErrStopped
	}
	// As locally; an inherited request's answer goes straight to the
	// original requester, here or on another node.
	handedOff, err := k.registerLocked(p, m, r, target, syncWait, reply)
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	if r.ExpectsResponse > 0 {
		k.index(target.Node, p, m)
	}
	p.mu.Unlock()
	if handedOff != nil {
		// The original requester waits under its own timeout: what is
		// left of it travels, and its pending entry is indexed, unless
		// it gave up meanwhile (then nobody waits for an answer).
		rp := handedOff.rsvp
		wait = 0
		rp.mu.Lock()
		if rp.pending[handedOff.ID] == handedOff {
			wait = max(time.Duration(handedOff.deadline-k.now()), 1)
			k.index(target.Node, rp, handedOff)
		}
		rp.mu.Unlock()
	}

	rm := &RemoteMessage{
		Kind:            KindRequest,
		ID:              k.wireID(m.ID),
		Source:          p.addr,
		Target:          target,
		Inherit:         m.Inherit,
		ExpectsResponse: wait,
		Body:            m.Body,
		Metadata:        m.Metadata,
		Capabilities:    k.signAll(attach, target.Node),
		Blob:            m.Blob,
	}
	if msgRec != nil {
		sc := msgRec.signed()
		rm.Messaging = &sc
	}
	k.observe(m, target) // before it travels, so taps see a request before its answer
	if err := tr.Send(rm); err != nil {
		p.mu.Lock()
		k.unregisterLocked(p, m, handedOff)
		p.mu.Unlock()
		if handedOff != nil {
			rp := handedOff.rsvp
			rp.mu.Lock()
			k.unindex(handedOff)
			rp.mu.Unlock()
		}
		return nil, k.transportErr(err, target)
	}
	return m, nil
}

// transportErr turns an error of Transport.Send into the *SendError a
// sender gets, counted: the transport's own, or offline.
func (k *Kernel) transportErr(err error, target Address) error {
	var se *SendError
	if errors.As(err, &se) && se.Kind.valid() {
		k.stats.errors[se.Kind].Add(1)
		if se.Target == (Address{}) {
			c := *se
			c.Target = target
			return &c
		}
		return se
	}
	return k.sendErr(ErrOffline, target, nil, err.Error())
}

// signAll returns recs signed, for a message to node, and remembers that
// node received those issued here (for revocation). Records that nobody
// here holds (minted for this message, or admitted on the way through)
// are forgotten once signed.
func (k *Kernel) signAll(recs []*capRecord, node string) []SignedCapability {
	if len(recs) == 0 {
		return nil
	}
	out := make([]SignedCapability, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rec.signed())
	}
	k.capMu.Lock()
	for _, rec := range recs {
		if rec.cap.Issuer.Node == k.node {
			k.noteSentLocked(rec.key, node)
		}
		k.collectLocked(rec)
	}
	k.capMu.Unlock()
	return out
}

// noteSentLocked remembers that the capability with encoding key went to
// node, within the bounds (maxSentCaps). k.capMu is held.
func (k *Kernel) noteSentLocked(key, node string) {
	r := &k.rm
	nodes := r.sentTo[key]
	if nodes == nil {
		if len(r.sentTo) >= maxSentCaps {
			for old := range r.sentTo {
				delete(r.sentTo, old)
				break
			}
		}
		nodes = make(map[string]struct{})
		r.sentTo[key] = nodes
	}
	if _, ok := nodes[node]; !ok && len(nodes) < maxSentCapNodes {
		nodes[node] = struct{}{}
	}
}

// Receive hands the kernel a RemoteMessage that arrived from node from,
// the authenticated peer's node id: a request to deliver to a process here
// (after the same checks and limits as a local one, re-run here), or the
// answer to a request sent from here. A frame whose source is not from
// (or is this node) is refused with an error wrapping ErrSpoofed and
// nothing else happens. A request refused here is answered back to its
// requester when it expects a response, and its *SendError is returned
// too, for counting; a frame no conforming kernel sends (an unknown kind,
// an invalid source, a negative timeout, metadata that is not UTF-8) is
// refused with an error wrapping ErrInvalid and not answered. An answer
// that matches no request sent to from (unknown, answered already, timed
// out) is counted late (Stats.LateResponses) and dropped.
func (k *Kernel) Receive(from string, m *RemoteMessage) error {
	if m == nil {
		return fmt.Errorf("kernel: receive from %s: %w: no message", from, ErrInvalid)
	}
	if m.Source.Node != from || from == k.node || from == OurNode {
		return fmt.Errorf("kernel: receive from %s: %w: the frame names %q as its source node", from, ErrSpoofed, m.Source.Node)
	}
	switch m.Kind {
	case KindRequest:
		return k.receiveRequest(from, m)
	case KindResponse, KindError:
		return k.receiveAnswer(from, m)
	}
	return fmt.Errorf("kernel: receive from %s: %w: unknown message kind %d", from, ErrInvalid, m.Kind)
}

// receiveRequest checks and delivers a request from another node.
func (k *Kernel) receiveRequest(from string, m *RemoteMessage) error {
	bad := func(why string) error {
		return fmt.Errorf("kernel: receive from %s: %w: %s", from, ErrInvalid, why)
	}
	if err := m.Source.Validate(); err != nil {
		return bad(err.Error())
	}
	switch {
	case m.ExpectsResponse < 0:
		return bad(fmt.Sprintf("negative timeout %v", m.ExpectsResponse))
	case m.Error != nil:
		return bad("a request carries an error")
	case m.Metadata != "" && !utf8.ValidString(m.Metadata):
		return bad("metadata is not valid UTF-8")
	}
	if err := m.Target.Validate(); err != nil {
		return k.refuse(m, k.sendErr(ErrNoSuchProcess, m.Target, nil, err.Error()))
	}
	if m.Target.Node != k.node {
		return k.refuse(m, k.sendErr(ErrNoSuchProcess, m.Target, nil, "node "+m.Target.Node+" is not this node"))
	}
	target := m.Target
	if se := k.checkSizes(target, m.Body, m.Metadata, m.Blob, len(m.Capabilities), 0); se != nil {
		return k.refuse(m, se)
	}
	if m.ExpectsResponse > k.lim.MaxTimeout {
		return k.refuse(m, k.sendErr(ErrTooLarge, target, nil, fmt.Sprintf("timeout %v is over %v (max_timeout)", m.ExpectsResponse, k.lim.MaxTimeout)))
	}
	t := k.lookup(target.Process)
	if t == nil || t.impl == nil || t.system {
		return k.refuse(m, k.sendErr(ErrNoSuchProcess, target, nil, "no process "+target.Process.String()+" takes requests from other nodes here"))
	}

	var attach []*capRecord
	k.capMu.Lock()
	if !t.holds(k.netCap) {
		k.capMu.Unlock()
		return k.refuse(m, k.sendErr(ErrNoCapability, target, nil, fmt.Sprintf("%s does not hold the network capability", t.id)))
	}
	if !t.public {
		if why := k.checkMessagingLocked(t, m.Messaging); why != "" {
			k.capMu.Unlock()
			return k.refuse(m, k.sendErr(ErrNoCapability, target, nil, fmt.Sprintf("%s is not public and %s", t.id, why)))
		}
	}
	for _, sc := range m.Capabilities {
		rec, err := k.admitLocked(sc)
		if err != nil {
			k.unpinLocked(attach)
			k.capMu.Unlock()
			return k.refuse(m, k.sendErr(ErrNoCapability, target, nil, "attached "+err.Error()))
		}
		rec.pins++ // until it is granted
		attach = append(attach, rec)
	}
	attached := make([]Capability, 0, len(attach))
	for _, rec := range attach {
		attached = append(attached, rec.cap)
	}
	k.capMu.Unlock()

	src := m.Source
	lm := &Message{
		ID:              k.nextID.Add(1),
		Kind:            KindRequest,
		src:             &src,
		dst:             &t.addr,
		Inherit:         m.Inherit,
		ExpectsResponse: m.ExpectsResponse,
		Body:            m.Body,
		Metadata:        m.Metadata,
		Capabilities:    attached,
		Blob:            m.Blob,
	}
	rp := k.rm.proc
	if m.ExpectsResponse > 0 {
		lm.rsvp = rp
		rp.mu.Lock()
		if n := k.rm.perNode[from]; n >= inboundPerNode*k.lim.MaxPendingRequests {
			rp.mu.Unlock()
			k.unpin(attach)
			return k.refuse(m, k.sendErr(ErrMailboxFull, target, nil, fmt.Sprintf("node %s has %d requests awaiting answers here (%d × max_pending_requests)", from, n, inboundPerNode)))
		}
		lm.deadline = k.now() + int64(m.ExpectsResponse)
		rp.pending[lm.ID] = lm
		k.rm.inbound[lm.ID] = inboundReq{node: from, wireID: m.ID, requester: src, target: t.addr}
		k.rm.perNode[from]++
		rp.addTimeout(lm)
		rp.mu.Unlock()
	}
	var granted []*capRecord
	if len(attach) > 0 {
		granted = k.grantAll(attach, t)
		k.unpin(attach)
	}
	if err := k.deliverRequest(t, lm); err != nil {
		if m.ExpectsResponse > 0 {
			rp.mu.Lock()
			if rp.pending[lm.ID] == lm {
				delete(rp.pending, lm.ID)
				k.takeInboundLocked(lm.ID)
				rp.removeTimeout(lm)
			}
			rp.mu.Unlock()
		}
		if len(granted) > 0 {
			k.dropAll(granted, t)
		}
		var se *SendError
		if errors.As(err, &se) {
			return k.refuse(m, se)
		}
		return err
	}
	return nil
}

// checkMessagingLocked checks the messaging capability a remote sender
// presents for t, and says why it does not do, or "" when it does. It
// must be t's, signed by this node, and not revoked. k.capMu is held.
func (k *Kernel) checkMessagingLocked(t *proc, sc *SignedCapability) string {
	switch {
	case sc == nil:
		return "the sender presents no messaging capability for it"
	case sc.Issuer != t.addr || sc.Params != MessagingParams:
		return fmt.Sprintf("the capability presented, %s, is not its messaging capability", sc.Capability)
	}
	key := EncodeCapability(sc.Capability)
	if !k.keys.Verify(k.node, key, sc.Signature) {
		return "the messaging capability presented is not signed by this node"
	}
	if _, ok := k.rm.revoked[string(key)]; ok {
		return "the messaging capability presented was revoked"
	}
	return ""
}

// refuse answers a refused request from another node with se, when its
// requester waits for an answer, and returns se.
func (k *Kernel) refuse(m *RemoteMessage, se *SendError) error {
	if m.ExpectsResponse <= 0 {
		return se
	}
	src := m.Target
	if src.Node != k.node || src.Validate() != nil {
		src = Address{Node: k.node, Process: KernelProcess}
	}
	k.sendAnswer(&RemoteMessage{
		Kind:   KindError,
		ID:     m.ID,
		Source: src,
		Target: m.Source,
		Error:  &SendError{Kind: se.Kind, Target: m.Target, Detail: se.Detail},
	})
	return se
}

// sendAnswer hands an answer to the transport; one it refuses is logged
// and counted, as one it reports undelivered later.
func (k *Kernel) sendAnswer(rm *RemoteMessage) {
	tr := k.transport()
	if tr == nil {
		k.stats.errors[ErrOffline].Add(1)
		k.log.Warn("answer to another node dropped: no network transport", "target", rm.Target.String(), "id", rm.ID)
		return
	}
	if err := tr.Send(rm); err != nil {
		kind := ErrOffline
		var se *SendError
		if errors.As(err, &se) && se.Kind.valid() {
			kind = se.Kind
		}
		k.stats.errors[kind].Add(1)
		k.log.Warn("answer to another node not sent", "target", rm.Target.String(), "id", rm.ID, "err", err)
	}
}

// replyAddr is where the answer to pm, pending at rsvp, goes: the
// requester, here or on another node.
func (k *Kernel) replyAddr(rsvp *proc, pm *Message) Address {
	if rsvp != k.rm.proc {
		return rsvp.addr
	}
	rsvp.mu.Lock()
	in, ok := k.rm.inbound[pm.ID]
	rsvp.mu.Unlock()
	if !ok {
		return rsvp.addr
	}
	return in.requester
}

// answer hands the answer to request resp.ID to its requester rsvp: here,
// granting it the attached capabilities, or on another node, through the
// transport with them signed.
func (k *Kernel) answer(rsvp *proc, resp *Message, attach []*capRecord) {
	if rsvp == k.rm.proc {
		k.answerRemote(resp.ID, resp, attach)
		return
	}
	if len(attach) > 0 {
		k.grantAll(attach, rsvp)
	}
	k.complete(rsvp, resp.ID, resp)
}

// answerRemote forwards the answer to the request from another node
// pending here as id, if it still waits, and reports whether it did.
func (k *Kernel) answerRemote(id uint64, ans *Message, attach []*capRecord) bool {
	rp := k.rm.proc
	rp.mu.Lock()
	req := rp.pending[id]
	if req == nil {
		rp.mu.Unlock()
		k.stats.late.Add(1)
		return false
	}
	in, _ := k.takeInboundLocked(id)
	delete(rp.pending, id)
	rp.removeTimeout(req)
	rp.mu.Unlock()
	k.forwardAnswer(in, ans, attach)
	return true
}

// takeInboundLocked removes and returns where the answer to the request
// from another node pending here as id goes. k.rm.proc.mu is held.
func (k *Kernel) takeInboundLocked(id uint64) (inboundReq, bool) {
	in, ok := k.rm.inbound[id]
	if ok {
		delete(k.rm.inbound, id)
		if k.rm.perNode[in.node]--; k.rm.perNode[in.node] <= 0 {
			delete(k.rm.perNode, in.node)
		}
	}
	return in, ok
}

// forwardAnswer sends ans, the answer to the request in, to the
// requester's node.
func (k *Kernel) forwardAnswer(in inboundReq, ans *Message, attach []*capRecord) {
	src := in.target
	if ans.Kind == KindResponse && ans.src != nil && ans.src.Node == k.node {
		src = *ans.src
	}
	rm := &RemoteMessage{
		Kind:         ans.Kind,
		ID:           in.wireID,
		Source:       src,
		Target:       in.requester,
		Inherit:      ans.Inherit,
		Body:         ans.Body,
		Metadata:     ans.Metadata,
		Capabilities: k.signAll(attach, in.node),
		Blob:         ans.Blob,
	}
	if e := ans.Error; e != nil {
		rm.Error = &SendError{Kind: e.Kind, Target: e.Target, Detail: e.Detail}
	}
	k.observe(ans, in.requester)
	k.sendAnswer(rm)
}

// receiveAnswer matches an answer from another node to the request it
// answers and hands it to the requester, with its context, as a local
// answer. Attached capabilities are admitted and granted to the
// requester; if one does not verify, the requester gets a no_capability
// error in its place.
func (k *Kernel) receiveAnswer(from string, m *RemoteMessage) error {
	e, ok := k.takeOutstanding(from, m.ID)
	if !ok {
		k.stats.late.Add(1)
		return nil
	}
	req, rsvp := e.req, e.rsvp
	// The process that answered: the target, or the end of a chain the
	// target handed the request on to.
	target := m.Source
	if target.Validate() != nil {
		target = *req.dst
	}
	fail := func(kind ErrorKind, detail string) error {
		se := k.sendErr(kind, target, req, detail)
		k.answer(rsvp, &Message{ID: req.ID, Kind: KindError, src: &rsvp.addr, dst: &se.Target, Error: se}, nil)
		return se
	}
	if m.Kind == KindError {
		if m.Error == nil || !m.Error.Kind.valid() {
			return fail(ErrOffline, "node "+from+" sent a malformed error")
		}
		et := m.Error.Target
		if et.Validate() != nil {
			et = target
		}
		se := &SendError{Kind: m.Error.Kind, Target: et, Message: req, Detail: m.Error.Detail}
		k.answer(rsvp, &Message{ID: req.ID, Kind: KindError, src: &rsvp.addr, dst: &se.Target, Error: se}, nil)
		return nil
	}
	if m.Metadata != "" && !utf8.ValidString(m.Metadata) {
		return fail(ErrOffline, "node "+from+" sent a response whose metadata is not valid UTF-8")
	}
	if se := k.checkSizes(target, m.Body, m.Metadata, m.Blob, len(m.Capabilities), 0); se != nil {
		return fail(se.Kind, "the response from node "+from+" is refused: "+se.Detail)
	}
	var recs []*capRecord
	var caps []Capability
	if len(m.Capabilities) > 0 {
		k.capMu.Lock()
		for _, sc := range m.Capabilities {
			rec, err := k.admitLocked(sc)
			if err != nil {
				k.unpinLocked(recs)
				k.capMu.Unlock()
				return fail(ErrNoCapability, "the response from node "+from+" attaches a capability that is refused: "+err.Error())
			}
			rec.pins++ // until it is granted or passed on
			recs = append(recs, rec)
			caps = append(caps, rec.cap)
		}
		k.capMu.Unlock()
	}
	src := target
	ans := &Message{
		ID:           req.ID,
		Kind:         KindResponse,
		src:          &src,
		dst:          &rsvp.addr,
		Inherit:      m.Inherit,
		Body:         m.Body,
		Metadata:     m.Metadata,
		Capabilities: caps,
		Blob:         m.Blob,
	}
	k.answer(rsvp, ans, recs)
	k.unpin(recs)
	return nil
}

// unpin releases the pins that kept recs, admitted from another node,
// while they were on their way to a holder (a process here, or the next
// node), and forgets those that nobody holds now.
func (k *Kernel) unpin(recs []*capRecord) {
	if len(recs) == 0 {
		return
	}
	k.capMu.Lock()
	k.unpinLocked(recs)
	k.capMu.Unlock()
}

// unpinLocked is unpin with k.capMu held.
func (k *Kernel) unpinLocked(recs []*capRecord) {
	for _, r := range recs {
		r.pins--
		k.collectLocked(r)
	}
}

// Undelivered tells the kernel the transport could not deliver m (the node
// was offline past its dial deadline, the frame too large, ...). The
// requester of a request expecting a response gets a SendError of kind with
// detail, if it still waits; anything else is logged and counted.
func (k *Kernel) Undelivered(m *RemoteMessage, kind ErrorKind, detail string) {
	if m == nil {
		return
	}
	if !kind.valid() {
		kind = ErrOffline
	}
	if m.Kind == KindRequest && m.ExpectsResponse > 0 {
		if e, ok := k.takeOutstanding(m.Target.Node, m.ID); ok {
			k.fail(e.rsvp, e.req.ID, k.sendErr(kind, m.Target, e.req, detail))
		}
		return
	}
	k.stats.errors[kind].Add(1)
	k.log.Warn("message to another node not delivered", "kind", m.Kind.String(), "target", m.Target.String(), "id", m.ID, "error", kind.String(), "detail", detail)
}

// ReceiveRevocation hands the kernel a revocation from node from: c, issued
// on from, is revoked, so every local copy is dropped (and the holders'
// records persisted). The issuer's node must be from (else the error wraps
// ErrSpoofed) and the signature must verify (else ErrForged). It is no
// error that nobody here holds c.
func (k *Kernel) ReceiveRevocation(from string, c SignedCapability) error {
	if c.Issuer.Node != from || from == k.node {
		return fmt.Errorf("kernel: revocation from %s: %w: the capability is issued by node %q", from, ErrSpoofed, c.Issuer.Node)
	}
	k.capMu.Lock()
	if err := k.verifySignedLocked(c); err != nil {
		k.capMu.Unlock()
		return fmt.Errorf("kernel: revocation from %s: %w", from, err)
	}
	rec := k.caps[string(EncodeCapability(c.Capability))]
	if rec == nil {
		k.capMu.Unlock()
		return nil
	}
	holders := k.dropHoldersLocked(rec)
	k.capMu.Unlock()
	for _, h := range holders {
		k.persistLogged(h)
	}
	return nil
}

// dropHoldersLocked takes rec from every holder and returns them. k.capMu
// is held.
func (k *Kernel) dropHoldersLocked(rec *capRecord) []*proc {
	holders := make([]*proc, 0, len(rec.holders))
	for h := range rec.holders {
		holders = append(holders, h)
	}
	for _, h := range holders {
		k.dropLocked(rec, h)
	}
	return holders
}

// markRevokedLocked marks c (normalized, issued here, encoded as key)
// revoked and returns the nodes it was sent to, forgetting them. k.capMu
// is held.
func (k *Kernel) markRevokedLocked(c Capability, key string) ([]string, error) {
	r := &k.rm
	var err error
	if _, ok := r.revoked[key]; !ok {
		r.revoked[key] = struct{}{}
		if r.revStore != nil {
			if err = r.revStore.AddRevocation(c); err != nil {
				err = fmt.Errorf("kernel: persist the revocation of %s: %w", c, err)
			}
		}
	}
	nodes := make([]string, 0, len(r.sentTo[key]))
	for n := range r.sentTo[key] {
		nodes = append(nodes, n)
	}
	delete(r.sentTo, key)
	return nodes, err
}

// unrevokeLocked clears the revocation mark of c (normalized, issued
// here, encoded as key): it is being granted again. k.capMu is held.
func (k *Kernel) unrevokeLocked(c Capability, key string) {
	r := &k.rm
	if len(r.revoked) == 0 {
		return
	}
	if _, ok := r.revoked[key]; !ok {
		return
	}
	delete(r.revoked, key)
	if r.revStore != nil {
		if err := r.revStore.RemoveRevocation(c); err != nil {
			k.log.Error("persisting that a capability is granted again failed", "capability", c.String(), "err", err)
		}
	}
}

// tellRevoked tells every node in nodes that c, issued here, is revoked.
func (k *Kernel) tellRevoked(c Capability, nodes []string) {
	tr := k.transport()
	if tr == nil || len(nodes) == 0 {
		return
	}
	sc := SignedCapability{Capability: c, Signature: k.keys.Sign(EncodeCapability(c))}
	for _, n := range nodes {
		tr.Revoke(n, sc)
	}
}

// SetAlias makes name stand for node in addresses (name@proc:pkg:pub),
// wherever "our" is resolved: targets of requests, issuers of
// capabilities. name must be a valid node part, not "our" and not itself a
// node id; node must be a node id (Config.CheckNodeID). An alias set
// again is replaced. The kernel keeps aliases in memory only.
func (k *Kernel) SetAlias(name, node string) error {
	r := &k.rm
	switch {
	case ValidateNode(name) != nil:
		return fmt.Errorf("kernel: alias %q: %w: %w", name, ErrInvalid, ValidateNode(name))
	case name == OurNode:
		return fmt.Errorf("kernel: alias %q: %w: %q always means this node", name, ErrInvalid, OurNode)
	case r.checkNodeID(name) == nil:
		return fmt.Errorf("kernel: alias %q: %w: it is a node id itself", name, ErrInvalid)
	case ValidateNode(node) != nil || node == OurNode:
		return fmt.Errorf("kernel: alias %q: %w: %q is not a node id", name, ErrInvalid, node)
	}
	if err := r.checkNodeID(node); err != nil {
		return fmt.Errorf("kernel: alias %q: %w: %w", name, ErrInvalid, err)
	}
	r.aliasMu.Lock()
	defer r.aliasMu.Unlock()
	next := make(map[string]string)
	if cur := r.aliases.Load(); cur != nil {
		maps.Copy(next, *cur)
	}
	next[name] = node
	r.aliases.Store(&next)
	return nil
}

// RemoveAlias forgets an alias and reports whether it existed.
func (k *Kernel) RemoveAlias(name string) bool {
	r := &k.rm
	r.aliasMu.Lock()
	defer r.aliasMu.Unlock()
	cur := r.aliases.Load()
	if cur == nil {
		return false
	}
	if _, ok := (*cur)[name]; !ok {
		return false
	}
	if len(*cur) == 1 {
		r.aliases.Store(nil)
		return true
	}
	next := maps.Clone(*cur)
	delete(next, name)
	r.aliases.Store(&next)
	return true
}

// Aliases returns a copy of the aliases, name → node id.
func (k *Kernel) Aliases() map[string]string {
	out := make(map[string]string)
	if cur := k.rm.aliases.Load(); cur != nil {
		maps.Copy(out, *cur)
	}
	return out
}

// valid reports whether k is one of ErrorKinds.
func (k ErrorKind) valid() bool { return int(k) < len(errorKindNames) && errorKindNames[k] != "" }

// closeRemote stops the timers of requests from other nodes.
func (k *Kernel) closeRemote() {
	rp := k.rm.proc
	rp.mu.Lock()
	rp.stopTimeouts()
	rp.mu.Unlock()
}
