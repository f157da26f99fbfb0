package kernel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHammer drives the router from many goroutines at once (run it under
// -race): clients fire requests at non-public servers, async and blocking,
// while servers are killed and restarted and capabilities are granted and
// revoked. Every response must match its request, every failure must be a
// SendError of an expected kind, and nothing may be left pending.
func TestHammer(t *testing.T) {
	const (
		servers  = 6
		clients  = 12
		requests = 300
	)
	e := newEnv(t, withLimits(Limits{MailboxLength: 64}), withRestart(RestartPolicy{Initial: time.Millisecond, Max: time.Millisecond, Stable: time.Second}))
	var serverIDs []ProcessId
	for i := 0; i < servers; i++ {
		id := pid(fmt.Sprintf("s%d:srv:test", i))
		serverIDs = append(serverIDs, id)
		e.start(id.String(), false, echo, func(s *Spec) { s.OnExit = OnExit{Kind: OnExitRestart} })
	}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		id := pid(fmt.Sprintf("c%d:cli:test", c))
		var caps []Capability
		for _, s := range serverIDs {
			caps = append(caps, Capability{Issuer: e.k.Address(s), Params: MessagingParams})
		}
		wg.Add(1)
		seed := uint64(c)
		e.start(id.String(), false, func(h *Handle) error {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 99))
			outstanding := 0
			check := func(m *Message) {
				switch m.Kind {
				case KindResponse:
					if string(m.Body) != string(m.Context()) {
						t.Errorf("response %q does not match its context %q", m.Body, m.Context())
					}
					ok.Add(1)
				case KindError:
					if k := m.Error.Kind; k != ErrKilled && k != ErrTimeout {
						t.Errorf("unexpected delivered error %v", m.Error)
					}
					failed.Add(1)
				default:
					t.Errorf("client got a %s", m.Kind)
				}
			}
			for i := 0; i < requests; i++ {
				body := binary.BigEndian.AppendUint64(nil, rng.Uint64())
				target := e.k.Address(serverIDs[rng.IntN(servers)])
				if i%5 == 0 {
					m, err := h.SendAndAwait(&Request{Target: target, Body: body, ExpectsResponse: 30 * time.Second})
					if err != nil {
						var se *SendError
						if !errors.As(err, &se) {
							t.Errorf("send_and_await: %v", err)
							return err
						}
						failed.Add(1)
						continue
					}
					if string(m.Body) != string(body) {
						t.Errorf("blocking response %x for %x", m.Body, body)
					}
					ok.Add(1)
					continue
				}
				_, err := h.Send(&Request{Target: target, Body: body, Context: body, ExpectsResponse: 30 * time.Second})
				if err != nil {
					var se *SendError
					if !errors.As(err, &se) || (se.Kind != ErrMailboxFull && se.Kind != ErrNoSuchProcess) {
						t.Errorf("send: %v", err)
						return err
					}
					failed.Add(1)
				} else {
					outstanding++
				}
				for outstanding > 8 {
					m, err := h.Await()
					if err != nil {
						return err
					}
					check(m)
					outstanding--
				}
			}
			for ; outstanding > 0; outstanding-- {
				m, err := h.Await()
				if err != nil {
					return err
				}
				check(m)
			}
			return nil
		}, func(s *Spec) { s.Capabilities = caps })
	}
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Add(2)
	go func() { // kill and restart servers
		defer chaos.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := serverIDs[i%servers]
			if err := e.k.Restart(context.Background(), id); err != nil {
				t.Errorf("restart: %v", err)
				return
			}
		}
	}()
	go func() { // capability churn on the side, and operator traffic
		defer chaos.Done()
		c := Capability{Issuer: e.k.Address(serverIDs[0]), Params: `{"churn":true}`}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			to := pid(fmt.Sprintf("c%d:cli:test", i%clients))
			if err := e.k.Grant(c, to); err != nil && !errors.Is(err, ErrNotFound) {
				t.Errorf("grant: %v", err)
			}
			if err := e.k.Revoke(c); err != nil {
				t.Errorf("revoke: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := e.k.Send(ctx, &Request{Target: e.k.Address(serverIDs[i%servers]), Body: []byte("op"), ExpectsResponse: 10 * time.Second})
			cancel()
			var se *SendError
			if err != nil && !errors.As(err, &se) {
				t.Errorf("operator send: %v", err)
			}
		}
	}()
	wg.Wait()
	close(stop)
	chaos.Wait()
	t.Logf("%d answered, %d failed", ok.Load(), failed.Load())
	if ok.Load() == 0 {
		t.Fatal("nothing got through")
	}
	if got := ok.Load() + failed.Load(); got != clients*requests {
		t.Fatalf("%d outcomes for %d requests", got, clients*requests)
	}
	if n := e.k.pendingTimeouts(); n != 0 {
		t.Fatalf("%d requests still in the timeout queue", n)
	}
}
