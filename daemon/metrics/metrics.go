// Package metrics exposes a node's counters in the Prometheus text format:
// processes by state, messages routed, send errors by kind, mailbox depth,
// restarts and control API calls. weftd serves it on a separate loopback
// address when configured (off by default).
package metrics

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weftos/weft/kernel"
)

// Metrics owns a registry of its own (never the global one) holding the
// kernel's counters, read at scrape time, the control API's call counts,
// and the standard Go runtime and process collectors.
type Metrics struct {
	reg      *prometheus.Registry
	apiCalls *prometheus.CounterVec
}

// New makes the metrics of kernel k. Nothing is read from k until a scrape.
func New(k *kernel.Kernel) *Metrics {
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
