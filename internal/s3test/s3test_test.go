package s3test_test

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/weftos/weft/internal/s3test"
)

func client(t *testing.T, s *s3test.Server, secret string) *minio.Client {
	t.Helper()
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(s.AccessKey, secret, ""),
		Region:     s.Region,
		MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStart: the server answers on 127.0.0.1 with the buckets asked
// for, checks signatures, and is gone once its test has ended.
func TestStart(t *testing.T) {
	ctx := t.Context()
	var endpoint string
	t.Run("running", func(t *testing.T) {
		s := s3test.Start(t, 2)
		endpoint = s.Endpoint
		u, err := url.Parse(s.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		if host, _, _ := net.SplitHostPort(u.Host); host != "127.0.0.1" || u.Scheme != "http" {
			t.Fatalf("endpoint %s, want http://127.0.0.1:PORT", s.Endpoint)
		}
		buckets, err := client(t, s, s.SecretKey).ListBuckets(ctx)
		if err != nil {
			t.Fatalf("list buckets: %v", err)
		}
		var names []string
		for _, b := range buckets {
			names = append(names, b.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, s.Buckets) || len(names) != 2 {
			t.Fatalf("buckets %q, want %q (two)", names, s.Buckets)
		}
		_, err = client(t, s, s.SecretKey+"x").ListBuckets(ctx)
		if minio.ToErrorResponse(err).StatusCode != http.StatusForbidden {
			t.Fatalf("a wrong secret: %v, want 403", err)
		}
	})
	// The cleanup of "running" stopped the server: nothing listens there.
	u, _ := url.Parse(endpoint)
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after its test ended", endpoint)
	}
}

// TestFindBinary: the binary that Start uses is found (bin/ via PATH
// under make, or the repository's bin/ under a plain go test).
func TestFindBinary(t *testing.T) {
	p, err := s3test.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	if p == "" {
		t.Fatal("empty path")
	}
}

// TestFindBinaryMissing: without the binary the error says what to run.
func TestFindBinaryMissing(t *testing.T) {
	t.Setenv("PATH", "")
	t.Chdir(t.TempDir())
	_, err := s3test.FindBinary()
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("FindBinary with no binary: %v, want an error naming make tools", err)
	}
}
