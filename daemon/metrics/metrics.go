// Package metrics exposes a node's counters in the Prometheus text format:
// processes by state, messages routed, send errors by kind, mailbox depth,
// restarts, control API calls and, when given, the native drivers' calls,
// failures and restarts and each peer's traffic, errors and spoofed
// frames. weftd serves it on a separate loopback address
// when configured (off by default).
package metrics

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/plugins"
)

// Metrics owns a registry of its own (never the global one) holding the
// kernel's counters, read at scrape time, the control API's call counts,
// the standard Go runtime and process collectors, and what its Options
// add.
type Metrics struct {
	reg      *prometheus.Registry
	apiCalls *prometheus.CounterVec
}

// An Option adds to what New collects.
type Option func(*Metrics)

// DriverLister is what the driver metrics read of the node's native
// drivers; *plugins.Manager is one. List is called at every scrape, and
// the scrape waits for it.
type DriverLister interface {
	// List describes every declared driver, those refused included.
	List() []plugins.Info
}

// WithDrivers adds the metrics of the drivers d lists, read at scrape
// time, labelled by driver name: weft_driver_up, weft_driver_refused,
// weft_driver_calls_total, weft_driver_failures_total,
// weft_driver_refused_operations_total and weft_driver_restarts_total.
// A nil d adds nothing.
func WithDrivers(d DriverLister) Option {
	return func(m *Metrics) {
		if d != nil {
			m.reg.MustRegister(newDriverCollector(d))
		}
	}
}

// PeerStatser is what the peer metrics read of the node on the network;
// *p2p.Node is one. Stats is called at every scrape.
type PeerStatser interface {
	// Stats returns each peer's counters, by node id.
	Stats() map[string]p2p.PeerStats
}

// WithPeers adds the counters of every peer p has state for (connected,
// or with messages queued), read at scrape time and labelled by node id:
// weft_peer_bytes_total and weft_peer_messages_total (by direction, in
// or out), weft_peer_errors_total, weft_peer_spoofed_frames_total and
// weft_peer_rate_limited_total. A peer's counters start again at zero
// when it connects after its state was dropped, which Prometheus reads as
// a counter reset. A nil p adds nothing.
func WithPeers(p PeerStatser) Option {
	return func(m *Metrics) {
		if p != nil {
			m.reg.MustRegister(newPeerCollector(p))
		}
	}
}

// New makes the metrics of kernel k, and of what opts add. Nothing is
// read from k until a scrape.
func New(k *kernel.Kernel, opts ...Option) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_api_calls_total",
			Help: "Control API calls handled, by procedure and result code (ok, or the Connect error code).",
		}, []string{"procedure", "code"}),
	}
	m.reg.MustRegister(
		newKernelCollector(k),
		m.apiCalls,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, o := range opts {
		o(m)
	}
	return m
}

// GaugeFunc adds a gauge read from f at scrape time, with constant labels:
// for the daemon's own figures (the control API's connections, say).
func (m *Metrics) GaugeFunc(name, help string, labels map[string]string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
}

// CounterFunc adds a counter read from f at scrape time, as GaugeFunc.
func (m *Metrics) CounterFunc(name, help string, labels map[string]string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Interceptor counts control API calls into weft_api_calls_total. Install it
// on the handlers (connect.WithInterceptors); on a client it counts nothing.
func (m *Metrics) Interceptor() connect.Interceptor {
	return interceptor{m.apiCalls}
}

type interceptor struct {
	calls *prometheus.CounterVec
}

func (i interceptor) observe(procedure string, err error) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	i.calls.WithLabelValues(procedure, code).Inc()
}

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		res, err := next(ctx, req)
		i.observe(req.Spec().Procedure, err)
		return res, err
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		i.observe(conn.Spec().Procedure, err)
		return err
	}
}

// kernelCollector reads the kernel's counters and process table at scrape
// time, so the kernel's hot path does no metrics work.
type kernelCollector struct {
	k *kernel.Kernel

	processes     *prometheus.Desc
	routed        *prometheus.Desc
	sendErrors    *prometheus.Desc
	restarts      *prometheus.Desc
	late          *prometheus.Desc
	mailboxDepth  *prometheus.Desc
	mailboxTotal  *prometheus.Desc
	pendingByProc *prometheus.Desc
}

// states are the process states, every one exported even when no process
// is in it.
var states = []kernel.ProcState{kernel.StateRunning, kernel.StateRestarting, kernel.StateExited, kernel.StateKilled}

func newKernelCollector(k *kernel.Kernel) *kernelCollector {
	return &kernelCollector{
		k: k,
		processes: prometheus.NewDesc("weft_processes",
			"Processes in the table, system processes included, by state.",
			[]string{"state"}, nil),
		routed: prometheus.NewDesc("weft_messages_routed_total",
			"Requests and responses delivered by the kernel.", nil, nil),
		sendErrors: prometheus.NewDesc("weft_send_errors_total",
			"Failed sends, by error kind.", []string{"kind"}, nil),
		restarts: prometheus.NewDesc("weft_restarts_total",
			"Processes restarted by their on_exit policy.", nil, nil),
		late: prometheus.NewDesc("weft_late_responses_total",
			"Responses that arrived after the requester stopped waiting.", nil, nil),
		mailboxDepth: prometheus.NewDesc("weft_mailbox_depth",
			"Requests waiting in a process's mailbox.", []string{"process"}, nil),
		mailboxTotal: prometheus.NewDesc("weft_mailbox_messages",
			"Requests waiting in all mailboxes on the node.", nil, nil),
		pendingByProc: prometheus.NewDesc("weft_pending_requests",
			"Requests a process sent that still await a response.", []string{"process"}, nil),
	}
}

func (c *kernelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.processes
	ch <- c.routed
	ch <- c.sendErrors
	ch <- c.restarts
	ch <- c.late
	ch <- c.mailboxDepth
	ch <- c.mailboxTotal
	ch <- c.pendingByProc
}

func (c *kernelCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.k.Stats()
	ch <- prometheus.MustNewConstMetric(c.routed, prometheus.CounterValue, float64(st.Routed))
	for _, kind := range kernel.ErrorKinds {
		ch <- prometheus.MustNewConstMetric(c.sendErrors, prometheus.CounterValue, float64(st.SendErrors[kind]), kind.String())
	}
	ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(st.Restarts))
	ch <- prometheus.MustNewConstMetric(c.late, prometheus.CounterValue, float64(st.LateResponses))

	byState := make(map[kernel.ProcState]int, len(states))
	total := 0
	for _, p := range c.k.Processes() {
		byState[p.State]++
		total += p.MailboxDepth
		id := p.ID.String()
		ch <- prometheus.MustNewConstMetric(c.mailboxDepth, prometheus.GaugeValue, float64(p.MailboxDepth), id)
		ch <- prometheus.MustNewConstMetric(c.pendingByProc, prometheus.GaugeValue, float64(p.Pending), id)
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(c.processes, prometheus.GaugeValue, float64(byState[s]), s.String())
	}
	ch <- prometheus.MustNewConstMetric(c.mailboxTotal, prometheus.GaugeValue, float64(total))
}

// driverCollector reads the drivers' listing at scrape time, so that
// driver calls do no metrics work beyond the counters plugins keeps.
type driverCollector struct {
	d DriverLister

	up, refused                           *prometheus.Desc
	calls, failures, refusedOps, restarts *prometheus.Desc
}

func newDriverCollector(d DriverLister) *driverCollector {
	byDriver := []string{"driver"}
	return &driverCollector{
		d: d,
		up: prometheus.NewDesc("weft_driver_up",
			"1 when the driver's process is running, else 0 (refused, waiting out its restart backoff, exited or killed).", byDriver, nil),
		refused: prometheus.NewDesc("weft_driver_refused",
			"1 when weftd refused to start the driver (its binary's checksum, or a missing binary), else 0.", byDriver, nil),
		calls: prometheus.NewDesc("weft_driver_calls_total",
			"Requests handed to the driver.", byDriver, nil),
		failures: prometheus.NewDesc("weft_driver_failures_total",
			"Requests the driver could not take at all; each one ended its run.", byDriver, nil),
		refusedOps: prometheus.NewDesc("weft_driver_refused_operations_total",
			"The driver's answers, sends and store operations the node refused.", byDriver, nil),
		restarts: prometheus.NewDesc("weft_driver_restarts_total",
			"Times the driver's on_exit restarted it.", byDriver, nil),
	}
}

func (c *driverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.refused, c.calls, c.failures, c.refusedOps, c.restarts} {
		ch <- d
	}
}

func (c *driverCollector) Collect(ch chan<- prometheus.Metric) {
	for _, in := range c.d.List() {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, b2f(in.Process.State == kernel.StateRunning), in.Name)
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.GaugeValue, b2f(in.Refused != ""), in.Name)
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(in.Calls), in.Name)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(in.Failures), in.Name)
		ch <- prometheus.MustNewConstMetric(c.refusedOps, prometheus.CounterValue, float64(in.RefusedOps), in.Name)
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(in.Process.Restarts), in.Name)
	}
}

// peerCollector reads the peers' counters at scrape time.
type peerCollector struct {
	p                            PeerStatser
	bytes, messages              *prometheus.Desc
	errors, spoofed, rateLimited *prometheus.Desc
}

func newPeerCollector(p PeerStatser) *peerCollector {
	byNode, byDir := []string{"node"}, []string{"node", "direction"}
	return &peerCollector{
		p: p,
		bytes: prometheus.NewDesc("weft_peer_bytes_total",
			"Frame bytes read from (in) and written to (out) the node since it connected.", byDir, nil),
		messages: prometheus.NewDesc("weft_peer_messages_total",
			"Frames read from (in) and written to (out) the node since it connected.", byDir, nil),
		errors: prometheus.NewDesc("weft_peer_errors_total",
			"Frames to or from the node that failed: not written, not read, or refused by the kernel for another reason than spoofing.", byNode, nil),
		spoofed: prometheus.NewDesc("weft_peer_spoofed_frames_total",
			"Frames from the node that claimed a source on another node; dropped.", byNode, nil),
		rateLimited: prometheus.NewDesc("weft_peer_rate_limited_total",
			"Requests from the node over its inbound rate limit ([network] inbound_rate).", byNode, nil),
	}
}

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.messages, c.errors, c.spoofed, c.rateLimited} {
		ch <- d
	}
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	for node, s := range c.p.Stats() {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.BytesIn), node, "in")
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.BytesOut), node, "out")
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(s.MessagesIn), node, "in")
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(s.MessagesOut), node, "out")
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors), node)
		ch <- prometheus.MustNewConstMetric(c.spoofed, prometheus.CounterValue, float64(s.Spoofed), node)
		ch <- prometheus.MustNewConstMetric(c.rateLimited, prometheus.CounterValue, float64(s.RateLimited), node)
	}
}

// b2f is 1 for true and 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
