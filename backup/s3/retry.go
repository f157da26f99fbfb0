package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/weftos/weft/backup/object"
)

// RetryPolicy bounds the retries of one operation. A failure is retried
// only when it is transient: the network (refused, reset, dropped, timed
// out), a 5xx answer, 408, or 429 and S3's SlowDown; never a refusal such
// as AccessDenied, NoSuchBucket or a bad signature. Between tries it
// waits a random time up to Base·2ⁿ, capped at Max ("full jitter").
// The zero value is the defaults.
type RetryPolicy struct {
	// Attempts is the most tries of an operation, the first included:
	// 1 turns retries off. Zero means 5.
	Attempts int
	// MaxElapsed is how long after the first try a retry may still
	// start. Zero means one minute.
	MaxElapsed time.Duration
	// Base and Max bound the wait before a retry. Zero means 200 ms and
	// 10 s.
	Base, Max time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 5
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = time.Minute
	}
	if p.Base <= 0 {
		p.Base = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 10 * time.Second
	}
	if p.Max < p.Base {
		p.Max = p.Base
	}
	return p
}

// backoff is the wait before retry n (1 for the first retry).
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.Max
	if n < 30 {
		if e := p.Base << (n - 1); e > 0 && e < p.Max {
			d = e
		}
	}
	return rand.N(d) + 1
}

// permanent marks an error that must not be retried whatever it wraps.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// do runs op until it succeeds, fails for good, or the policy or ctx
// ends the retries. op gets the number of its try (from 1) and the error
// of the one before. The error names the tries when there were several.
func (b *Backend) do(ctx context.Context, op func(attempt int, last error) error) error {
	p := b.retry
	start := time.Now()
	var err error
	for attempt := 1; ; attempt++ {
		err = op(attempt, err)
		if err == nil {
			return nil
		}
		if pe, ok := err.(permanent); ok {
			return tries(attempt, pe.err)
		}
		if !transient(ctx, err) {
			if denied(err) {
				err = fmt.Errorf("%w: %w", object.ErrDenied, err)
			}
			return tries(attempt, err)
		}
		if attempt >= p.Attempts {
			return tries(attempt, fmt.Errorf("%w: %w", object.ErrUnavailable, err))
		}
		wait := p.backoff(attempt)
		if time.Since(start)+wait > p.MaxElapsed {
			return fmt.Errorf("%w: %w (gave up after %d tries in %v: the next would start past the %v limit)",
				object.ErrUnavailable, err, attempt, time.Since(start).Round(time.Millisecond), p.MaxElapsed)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d tries, waiting to retry: %w)", err, attempt, ctx.Err())
		case <-t.C:
		}
	}
}

func tries(n int, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("%w (after %d tries)", err, n)
}

// denied says whether a failure is the server refusing the credentials.
func denied(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	switch er.Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return true
	}
	return er.StatusCode == http.StatusForbidden || er.StatusCode == http.StatusUnauthorized
}

// transient says whether a failure may pass if tried again.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false // the caller gave up
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch er.Code {
		case "SlowDown", "Throttling", "RequestTimeout", "InternalError", "ServiceUnavailable":
			return true
		}
		return er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests ||
			er.StatusCode == http.StatusRequestTimeout
	}
	// Errors of the connection itself.
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	var rhe tls.RecordHeaderError
	switch {
	case errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie), errors.As(err, &rhe):
		return false // will not change by trying again
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true // a timeout of the transport's, not the caller's
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue) && ue.Err.Error() != "http: server gave HTTP response to HTTPS client"
}
