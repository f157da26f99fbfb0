package kernel

import (
	"fmt"
	"math"
	"time"
)

// Limits bounds every resource a process can consume. Each field has a
// documented default (DefaultLimits) and a config key (its toml tag). The
// kernel enforces the message, mailbox, process-count, state and log
// limits; the Wasm host enforces memory, guest CPU time and module size.
// A zero field means "use the default".
type Limits struct {
	// MaxBodyBytes bounds a request's or response's body. Default 1 MiB.
	MaxBodyBytes int `toml:"max_body_bytes"`
	// MaxMetadataBytes bounds a message's metadata string. Default 64 KiB.
	MaxMetadataBytes int `toml:"max_metadata_bytes"`
	// MaxBlobBytes bounds a message's blob. Default 16 MiB.
	MaxBlobBytes int `toml:"max_blob_bytes"`
	// MaxContextBytes bounds the context kept with a request. Default 64 KiB.
	MaxContextBytes int `toml:"max_context_bytes"`
	// MaxMessageCapabilities bounds the capabilities attached to one
	// message. Default 64.
	MaxMessageCapabilities int `toml:"max_message_capabilities"`
	// MaxCapabilityParamsBytes bounds one capability's params. Default 4 KiB.
	MaxCapabilityParamsBytes int `toml:"max_capability_params_bytes"`

	// MailboxLength bounds the requests waiting in one process's mailbox.
	// Default 1024.
	MailboxLength int `toml:"mailbox_length"`
	// MailboxBytes bounds the bytes waiting in one mailbox. Default 64 MiB.
	MailboxBytes int64 `toml:"mailbox_bytes"`
	// MaxPendingRequests bounds the requests one process has outstanding
	// (sent, expecting a response, not yet answered). Responses are
	// always let into the requester's mailbox; this bounds them. Default 1024.
	MaxPendingRequests int `toml:"max_pending_requests"`
	// MaxTimeout bounds a request's ExpectsResponse. Default 24 h.
	MaxTimeout time.Duration `toml:"max_timeout"`

	// ProcessesPerPackage bounds the processes of one package, spawned
	// children included. Default 256.
	ProcessesPerPackage int `toml:"processes_per_package"`
	// ProcessesPerNode bounds all processes on the node. Default 4096.
	ProcessesPerNode int `toml:"processes_per_node"`

	// MaxStateBytes bounds one process's persisted state. Default 16 MiB.
	MaxStateBytes int `toml:"max_state_bytes"`

	// TapsPerNode bounds the taps open on the node (each Tap stream of
	// the control API holds one); opening one more fails with ErrLimit.
	// Default 64.
	TapsPerNode int `toml:"taps_per_node"`

	// LogLinesPerSecond and LogBurst rate-limit one process's log lines
	// (a token bucket). Lines over the rate are counted, and the count is
	// logged with the next line let through. Defaults 100 and 200.
	LogLinesPerSecond float64 `toml:"log_lines_per_second"`
	LogBurst          int     `toml:"log_burst"`
	// MaxLogLineBytes truncates one log line. Default 4 KiB.
	MaxLogLineBytes int `toml:"max_log_line_bytes"`

	// MemoryPerProcess bounds one Wasm instance's linear memory (Wasm
	// host). Default 64 MiB.
	MemoryPerProcess int64 `toml:"memory_per_process"`
	// GuestMemoryPerPackage bounds the linear memory of all the Wasm
	// instances of one package together, spawned children included
	// (Wasm host): a memory.grow past it fails in the guest, a spawn
	// whose child's initial memory does not fit fails with ErrLimit, and
	// a process whose initial memory does not fit does not start.
	// Default 1 GiB.
	GuestMemoryPerPackage int64 `toml:"guest_memory_per_package"`
	// GuestMemoryTotal bounds the linear memory of all Wasm instances on
	// the node, as GuestMemoryPerPackage does one package's (Wasm host).
	// Default 2 GiB.
	GuestMemoryTotal int64 `toml:"guest_memory_total"`
	// GuestCPUTime bounds the time a guest runs between two host calls; a
	// process that spins past it is killed and its on_exit applies (Wasm
	// host). Time spent waiting in await is never counted. Default 5 s.
	GuestCPUTime time.Duration `toml:"guest_cpu_time"`
	// MaxModuleBytes bounds one Wasm module file (package loader).
	// Default 32 MiB.
	MaxModuleBytes int64 `toml:"max_module_bytes"`
}

// DefaultLimits returns the defaults documented on each field of Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:             1 << 20,
		MaxMetadataBytes:         64 << 10,
		MaxBlobBytes:             16 << 20,
		MaxContextBytes:          64 << 10,
		MaxMessageCapabilities:   64,
		MaxCapabilityParamsBytes: 4 << 10,
		MailboxLength:            1024,
		MailboxBytes:             64 << 20,
		MaxPendingRequests:       1024,
		MaxTimeout:               24 * time.Hour,
		ProcessesPerPackage:      256,
		ProcessesPerNode:         4096,
		MaxStateBytes:            16 << 20,
		TapsPerNode:              64,
		LogLinesPerSecond:        100,
		LogBurst:                 200,
		MaxLogLineBytes:          4 << 10,
		MemoryPerProcess:         64 << 20,
		GuestMemoryPerPackage:    1 << 30,
		GuestMemoryTotal:         2 << 30,
		GuestCPUTime:             5 * time.Second,
		MaxModuleBytes:           32 << 20,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&l.MaxBodyBytes, d.MaxBodyBytes)
	def(&l.MaxMetadataBytes, d.MaxMetadataBytes)
	def(&l.MaxBlobBytes, d.MaxBlobBytes)
	def(&l.MaxContextBytes, d.MaxContextBytes)
	def(&l.MaxMessageCapabilities, d.MaxMessageCapabilities)
	def(&l.MaxCapabilityParamsBytes, d.MaxCapabilityParamsBytes)
	def(&l.MailboxLength, d.MailboxLength)
	def(&l.MaxPendingRequests, d.MaxPendingRequests)
	def(&l.ProcessesPerPackage, d.ProcessesPerPackage)
	def(&l.ProcessesPerNode, d.ProcessesPerNode)
	def(&l.MaxStateBytes, d.MaxStateBytes)
	def(&l.TapsPerNode, d.TapsPerNode)
	def(&l.LogBurst, d.LogBurst)
	def(&l.MaxLogLineBytes, d.MaxLogLineBytes)
	if l.MailboxBytes == 0 {
		l.MailboxBytes = d.MailboxBytes
	}
	if l.MaxTimeout == 0 {
		l.MaxTimeout = d.MaxTimeout
	}
	if l.LogLinesPerSecond == 0 {
		l.LogLinesPerSecond = d.LogLinesPerSecond
	}
	if l.MemoryPerProcess == 0 {
		l.MemoryPerProcess = d.MemoryPerProcess
	}
	if l.GuestMemoryPerPackage == 0 {
		l.GuestMemoryPerPackage = d.GuestMemoryPerPackage
	}
	if l.GuestMemoryTotal == 0 {
		l.GuestMemoryTotal = d.GuestMemoryTotal
	}
	if l.GuestCPUTime == 0 {
		l.GuestCPUTime = d.GuestCPUTime
	}
	if l.MaxModuleBytes == 0 {
		l.MaxModuleBytes = d.MaxModuleBytes
	}
	return l
}

// Validate refuses negative limits.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_body_bytes", int64(l.MaxBodyBytes)},
		{"max_metadata_bytes", int64(l.MaxMetadataBytes)},
		{"max_blob_bytes", int64(l.MaxBlobBytes)},
		{"max_context_bytes", int64(l.MaxContextBytes)},
		{"max_message_capabilities", int64(l.MaxMessageCapabilities)},
		{"max_capability_params_bytes", int64(l.MaxCapabilityParamsBytes)},
		{"mailbox_length", int64(l.MailboxLength)},
		{"mailbox_bytes", l.MailboxBytes},
		{"max_pending_requests", int64(l.MaxPendingRequests)},
		{"max_timeout", int64(l.MaxTimeout)},
		{"processes_per_package", int64(l.ProcessesPerPackage)},
		{"processes_per_node", int64(l.ProcessesPerNode)},
		{"max_state_bytes", int64(l.MaxStateBytes)},
		{"taps_per_node", int64(l.TapsPerNode)},
		{"log_burst", int64(l.LogBurst)},
		{"max_log_line_bytes", int64(l.MaxLogLineBytes)},
		{"memory_per_process", l.MemoryPerProcess},
		{"guest_memory_per_package", l.GuestMemoryPerPackage},
		{"guest_memory_total", l.GuestMemoryTotal},
		{"guest_cpu_time", int64(l.GuestCPUTime)},
		{"max_module_bytes", l.MaxModuleBytes},
	} {
		if f.v < 0 {
			return fmt.Errorf("limit %s is negative (%d)", f.name, f.v)
		}
	}
	if l.LogLinesPerSecond < 0 || math.IsNaN(l.LogLinesPerSecond) || math.IsInf(l.LogLinesPerSecond, 0) {
		return fmt.Errorf("limit log_lines_per_second is %g: want a finite number, zero or more", l.LogLinesPerSecond)
	}
	return nil
}
