package object

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Mem is a Backend in memory, for tests of the layers above.
type Mem struct {
	mu      sync.Mutex
	objects map[string][]byte
	name    string
}

// NewMem returns an empty in-memory backend named name.
func NewMem(name string) *Mem { return &Mem{objects: map[string][]byte{}, name: name} }

func (m *Mem) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if size >= 0 && int64(len(b)) != size {
		return fmt.Errorf("put %s: read %d bytes, want %d", name, len(b), size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[name] = b
	return nil
}

func (m *Mem) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	m.mu.Lock()
	b, ok := m.objects[name]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if offset < 0 || offset > int64(len(b)) {
		return nil, fmt.Errorf("get %s: offset %d outside its %d bytes", name, offset, len(b))
	}
	b = b[offset:]
	if length >= 0 {
		if length > int64(len(b)) {
			return nil, fmt.Errorf("get %s: %d bytes from %d, past its end", name, length, offset)
		}
		b = b[:length]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *Mem) Stat(ctx context.Context, name string) (Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[name]
	if !ok {
		return Info{}, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return Info{Name: name, Size: int64(len(b))}, nil
}

func (m *Mem) List(ctx context.Context, prefix string, fn func(Info) error) error {
	m.mu.Lock()
	var infos []Info
	for n, b := range m.objects {
		if strings.HasPrefix(n, prefix) {
			infos = append(infos, Info{Name: n, Size: int64(len(b))})
		}
	}
	m.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, in := range infos {
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mem) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[name]; !ok {
		return fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	delete(m.objects, name)
	return nil
}

func (m *Mem) String() string { return "mem:" + m.name }

// Bytes returns a copy of an object's bytes, for tests that tamper with
// or inspect a repository; nil when it is not there.
func (m *Mem) Bytes(name string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.objects[name]; ok {
		return bytes.Clone(b)
	}
	return nil
}

// Set replaces an object's bytes as they are, for tests that tamper.
func (m *Mem) Set(name string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[name] = bytes.Clone(b)
}
