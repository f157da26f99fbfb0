package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestShutdownLetsCallsInFlightFinish: once shutdown starts, no new call
// gets in, and a call in flight completes before shutdown returns.
func TestShutdownLetsCallsInFlightFinish(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvs := &servers{log: slog.New(slog.DiscardHandler)}
	srvs.serve(newServer(h, srvs.log, DefaultConnLimits(), nil), l, "test", false)
	url := "http://" + l.Addr().String()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered

	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srvs.shutdown(ctx)
		close(done)
	}()
	// Shutdown closes the listener at once: a new connection is refused.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts 30 s after shutdown began")
		}
		time.Sleep(10 * time.Millisecond) // polling the listener's state, bounded above
	}
	select {
	case <-done:
		t.Fatal("shutdown returned while a call was in flight")
	default:
	}
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("the call in flight got %q, want done", body)
	}
	<-done
}

// TestShutdownCutsCallsAtTheDeadline: a call that outlives the deadline
// has its connection closed, and shutdown returns.
func TestShutdownCutsCallsAtTheDeadline(t *testing.T) {
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // until its connection is cut
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvs := &servers{log: slog.New(slog.DiscardHandler)}
	srvs.serve(newServer(h, srvs.log, DefaultConnLimits(), nil), l, "test", false)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String())
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the deadline has passed already
	srvs.shutdown(ctx)
	if err := <-errc; err == nil {
		t.Error("the call outliving the deadline got a response")
	}
}
