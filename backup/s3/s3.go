// Package s3 keeps backup objects in one S3-compatible bucket under a
// prefix: an object.Backend over minio-go, with its own bounded retries
// of transient failures. It sees only what the repository above it
// hands over (ciphertext); it knows nothing of what objects hold.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/weftos/weft/backup/object"
)

// DefaultPartSize is the part size of multipart puts when Config leaves
// it zero. A put of unknown size buffers one part in memory, and can be
// at most 10,000 parts long (about 160 GiB at this size).
const DefaultPartSize = 16 << 20

// MinPartSize is the smallest part S3 accepts (but for the last).
const MinPartSize = 5 << 20

// Config is one target: a bucket under a prefix at an endpoint.
type Config struct {
	// Name names the target in messages ("offsite", "nas").
	Name string
	// Endpoint is the server's URL: "https://host[:port]" or
	// "http://host[:port]"; without a scheme it is https.
	Endpoint string
	Bucket   string
	// Prefix is put before every object's name. One that does not end
	// in "/" gets one, so that the target's objects are a subtree of the
	// bucket that no other prefix overlaps ("a" would list "ab/…").
	Prefix string
	// Region is the bucket's region; empty asks the server once.
	Region string
	// AccessKey and SecretKey are static credentials; Credentials, when
	// set, is used instead (environment, IAM, a file, …).
	AccessKey, SecretKey string
	// SessionToken goes with temporary AccessKey and SecretKey; empty for
	// long-lived ones.
	SessionToken string
	Credentials  *credentials.Credentials
	// PartSize is the size of the parts of multipart puts: at least
	// MinPartSize; zero means DefaultPartSize.
	PartSize uint64
	// Retry bounds the retries of transient failures.
	Retry RetryPolicy
	// Transport carries the requests; nil means minio-go's default.
	Transport http.RoundTripper
}

// Backend is an object.Backend over one bucket and prefix.
type Backend struct {
	c        *minio.Client
	bucket   string
	prefix   string
	partSize uint64
	http     bool
	retry    RetryPolicy
	desc     string
}

var _ object.Backend = (*Backend)(nil)

// New returns the Backend of a target. It checks the configuration but
// does not reach the server.
func New(cfg Config) (*Backend, error) {
	u, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("s3 target %q: %w", cfg.Name, err)
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	b := &Backend{
		bucket:   cfg.Bucket,
		prefix:   prefix,
		partSize: cfg.PartSize,
		http:     u.Scheme == "http",
		retry:    cfg.Retry.withDefaults(),
	}
	b.desc = fmt.Sprintf("s3 target %q (%s://%s, bucket %q, prefix %q)", cfg.Name, u.Scheme, u.Host, cfg.Bucket, prefix)
	if b.partSize == 0 {
		b.partSize = DefaultPartSize
	}
	if b.partSize < MinPartSize {
		return nil, fmt.Errorf("%s: part size %d below S3's minimum of %d", b.desc, b.partSize, MinPartSize)
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("%s: no bucket", b.desc)
	}
	creds := cfg.Credentials
	if creds == nil {
		if cfg.AccessKey == "" || cfg.SecretKey == "" {
			return nil, fmt.Errorf("%s: no credentials (an access key and a secret key, or a provider)", b.desc)
		}
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	b.c, err = minio.New(u.Host, &minio.Options{
		Creds:     creds,
		Secure:    u.Scheme == "https",
		Region:    cfg.Region,
		Transport: cfg.Transport,
		// One try per request: the retries are ours (retry.go), bounded
		// by the target's policy. minio-go's own loop (10 tries, with
		// backoff set by package variables) would multiply with them.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.desc, err)
	}
	return b, nil
}

func parseEndpoint(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("no endpoint")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("endpoint is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("endpoint scheme %q, want http or https", u.Scheme)
	case u.User != nil:
		// Not echoed: it may hold a password.
		return nil, errors.New("endpoint has user information; give credentials as keys")
	case u.Host == "":
		return nil, errors.New("endpoint has no host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("endpoint %s://%s has a path, query or fragment; a bucket is named by Bucket", u.Scheme, u.Host)
	}
	return u, nil
}

// String names the target: its Name, endpoint, bucket and prefix, never
// its credentials.
func (b *Backend) String() string { return b.desc }

func (b *Backend) key(name string) string { return b.prefix + name }

// fail is every error a method returns: the target, the operation and
// the object, and what went wrong.
func (b *Backend) fail(op, name string, err error) error {
	return fmt.Errorf("%s: %s %q: %w", b.desc, op, name, err)
}

func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return errors.New("invalid object name")
	}
	return nil
}

// Put stores r as name. A put is retried from the start: when r is an
// io.Seeker it is sought back to where it was; otherwise a put is
// retried only if nothing had been read from r yet.
func (b *Backend) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := checkName(name); err != nil {
		return b.fail("put", name, err)
	}
	seeker, _ := r.(io.Seeker)
	var start int64
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	// minio-go sees a plain reader: with an io.ReaderAt it would read
	// from offset 0 rather than from where r is, and with an io.Seeker
	// it would seek on its own.
	body := &countingReader{r: r}
	opts := minio.PutObjectOptions{
		PartSize:             b.partSize,
		DisableContentSha256: b.http,
	}
	err := b.do(ctx, func(attempt int, last error) error {
		if attempt > 1 && body.n > 0 {
			if seeker == nil {
				return permanent{fmt.Errorf("%w (not retried: %d bytes were read from a reader that cannot seek)", last, body.n)}
			}
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return permanent{fmt.Errorf("%w (not retried: seek back: %v)", last, err)}
			}
			body.n = 0
		}
		_, err := b.c.PutObject(ctx, b.bucket, b.key(name), body, size, opts)
		return err
	})
	if err != nil {
		return b.fail("put", name, err)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Get returns length bytes of name from offset (-1: to the end). The
// request is retried until its response begins; a failure while the
// caller reads is the caller's to handle.
func (b *Backend) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, b.fail("get", name, err)
	}
	if offset < 0 || length < -1 {
		return nil, b.fail("get", name, fmt.Errorf("invalid range: %d bytes from %d", length, offset))
	}
	if length == 0 {
		// S3 cannot express an empty range.
		info, err := b.Stat(ctx, name)
		if err != nil {
			return nil, err
		}
		if offset > info.Size {
			return nil, b.fail("get", name, fmt.Errorf("offset %d outside its %d bytes", offset, info.Size))
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	if offset > 0 || length > 0 {
		end := int64(0) // bytes=offset-
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, b.fail("get", name, err)
		}
	}
	var obj *minio.Object
	var info minio.ObjectInfo
	err := b.do(ctx, func(int, error) error {
		o, err := b.c.GetObject(ctx, b.bucket, b.key(name), opts)
		if err != nil {
			return err
		}
		// Stat sends the request and reads the response's head.
		if info, err = o.Stat(); err != nil {
			o.Close()
			return err
		}
		obj = o
		return nil
	})
	switch {
	case isNotFound(err):
		return nil, b.fail("get", name, errors.Join(object.ErrNotFound, err))
	case isInvalidRange(err):
		// S3 refuses a range that starts at the end; an object answers
		// it with no bytes.
		st, serr := b.Stat(ctx, name)
		if serr != nil {
			return nil, serr
		}
		if offset == st.Size {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.fail("get", name, fmt.Errorf("offset %d outside its %d bytes", offset, st.Size))
	case err != nil:
		return nil, b.fail("get", name, err)
	}
	// S3 cuts a range at the object's end; the backend contract says
	// that asking past it is an error.
	if length > 0 && info.Size < length {
		obj.Close()
		return nil, b.fail("get", name, fmt.Errorf("%d bytes from %d, past its end", length, offset))
	}
	return obj, nil
}

// Stat returns name's size.
func (b *Backend) Stat(ctx context.Context, name string) (object.Info, error) {
	if err := checkName(name); err != nil {
		return object.Info{}, b.fail("stat", name, err)
	}
	var info minio.ObjectInfo
	err := b.do(ctx, func(int, error) error {
		var err error
		info, err = b.c.StatObject(ctx, b.bucket, b.key(name), minio.StatObjectOptions{})
		return err
	})
	switch {
	case isNotFound(err):
		return object.Info{}, b.fail("stat", name, errors.Join(object.ErrNotFound, err))
	case err != nil:
		return object.Info{}, b.fail("stat", name, err)
	}
	return object.Info{Name: name, Size: info.Size}, nil
}

// List calls fn for the target's objects whose names begin with prefix,
// in lexical order; objects of the bucket outside the target's prefix
// are never seen. A listing that fails part way is retried after the
// last object fn was given.
func (b *Backend) List(ctx context.Context, prefix string, fn func(object.Info) error) error {
	var after string
	var fnErr error
	err := b.do(ctx, func(int, error) error {
		lctx, cancel := context.WithCancel(ctx)
		ch := b.c.ListObjects(lctx, b.bucket, minio.ListObjectsOptions{
			Prefix:     b.key(prefix),
			Recursive:  true,
			StartAfter: after,
		})
		defer func() {
			cancel()
			for range ch { // let minio-go's goroutine end
			}
		}()
		for oi := range ch {
			if oi.Err != nil {
				return oi.Err
			}
			name, ok := strings.CutPrefix(oi.Key, b.prefix)
			if !ok || name == "" || strings.HasSuffix(name, "/") {
				continue // a directory marker, or (never) outside the prefix
			}
			if fnErr = fn(object.Info{Name: name, Size: oi.Size}); fnErr != nil {
				return permanent{fnErr}
			}
			after = oi.Key
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return b.fail("list", prefix, err)
	}
	return nil
}

// Delete removes name. S3 answers a delete of a missing object with
// success, so Delete asks first: ErrNotFound when it is not there.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if _, err := b.Stat(ctx, name); err != nil {
		if errors.Is(err, object.ErrNotFound) {
			return b.fail("delete", name, object.ErrNotFound)
		}
		return err
	}
	err := b.do(ctx, func(int, error) error {
		return b.c.RemoveObject(ctx, b.bucket, b.key(name), minio.RemoveObjectOptions{})
	})
	if err != nil {
		return b.fail("delete", name, err)
	}
	return nil
}

// isNotFound: the object is not there (not: the bucket is not there).
func isNotFound(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	return er.Code == "NoSuchKey" || (er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket")
}

// isInvalidRange: the range starts at or past the object's end.
func isInvalidRange(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) &&
		(er.Code == "InvalidRange" || er.StatusCode == http.StatusRequestedRangeNotSatisfiable)
}
