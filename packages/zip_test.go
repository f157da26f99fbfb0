package packages

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"io"
	"io/fs"
	"strconv"
	"testing"
	"time"

	"github.com/weftos/weft/kernel"
)

// deflate compresses n zero bytes: a highly compressible payload.
func deflateZeros(t testing.TB, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeroReader{}, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func crcZeros(n int64) uint32 {
	h := crc32.NewIEEE()
	io.CopyN(h, zeroReader{}, n)
	return h.Sum32()
}

// TestZipRefused checks the archive's structure: every bad entry is
// refused before anything of the package is used.
func TestZipRefused(t *testing.T) {
	good := goodFiles()
	const bomb = 64 << 20 // inflates to 64 MiB, compressed to about 64 KiB
	bombData := deflateZeros(t, bomb)

	cases := []struct {
		name  string
		extra []zipEntry
		file  string
		want  []string
	}{
		{name: "zip slip", extra: []zipEntry{{name: "../x.wasm", data: goodWasm()}}, want: []string{`zip entry "../x.wasm"`, `".."`}},
		{name: "zip slip inner", extra: []zipEntry{{name: "bin/../../x.txt", data: []byte("x")}}, want: []string{`".."`}},
		{name: "zip slip backslash", extra: []zipEntry{{name: `..\x.wasm`, data: goodWasm()}}, want: []string{"backslash"}},
		{name: "absolute", extra: []zipEntry{{name: "/etc/passwd", data: []byte("x")}}, want: []string{"absolute path"}},
		{name: "drive letter", extra: []zipEntry{{name: "C:/x.txt", data: []byte("x")}}, want: []string{"drive letter"}},
		{name: "symlink", extra: []zipEntry{{name: "link.wasm", data: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}}, want: []string{`zip entry "link.wasm": symbolic links are not allowed`}},
		{name: "ignored symlink", extra: []zipEntry{{name: "docs/link", data: []byte("../../../etc"), mode: fs.ModeSymlink | 0o777}}, want: []string{"symbolic links"}},
		{name: "named pipe", extra: []zipEntry{{name: "fifo", mode: fs.ModeNamedPipe | 0o644}}, want: []string{"not a regular file"}},
		{name: "duplicate", extra: []zipEntry{{name: "echo.wasm", data: goodWasm()}}, want: []string{`"echo.wasm" appears twice`}},
		{name: "duplicate after cleaning", extra: []zipEntry{{name: "./manifest.json", data: good["manifest.json"]}}, want: []string{`"manifest.json" appears twice`}},
		{name: "duplicate directory", extra: []zipEntry{{name: "docs/README.md/", mode: fs.ModeDir | 0o755}}, want: []string{"appears twice"}},
		{
			// The header says what the entry really holds, 64 MiB: over
			// the module limit, refused before inflating anything.
			name: "zip bomb module",
			extra: []zipEntry{{name: "bomb.wasm", data: bombData, raw: &zip.FileHeader{
				Name: "bomb.wasm", Method: zip.Deflate, CRC32: crcZeros(bomb),
				CompressedSize64: uint64(len(bombData)), UncompressedSize64: bomb,
			}}},
			file: "bomb.wasm", want: []string{"at most 33554432 allowed"},
		},
		{
			// The header lies: it says 100 bytes. Inflating stops past them.
			name: "zip bomb lying header",
			extra: []zipEntry{{name: "bomb.wasm", data: bombData, raw: &zip.FileHeader{
				Name: "bomb.wasm", Method: zip.Deflate, CRC32: crcZeros(bomb),
				CompressedSize64: uint64(len(bombData)), UncompressedSize64: 100,
			}}},
			file: "bomb.wasm", want: []string{"read: inflates past the 100 bytes its header declares"},
		},
		{
			// An ignored file whose header says 1 TiB: the total is over.
			name: "zip bomb ignored file",
			extra: []zipEntry{{name: "data.bin", data: bombData, raw: &zip.FileHeader{
				Name: "data.bin", Method: zip.Deflate, CompressedSize64: uint64(len(bombData)), UncompressedSize64: 1 << 40,
			}}},
			want: []string{"more than 268435456 bytes uncompressed"},
		},
		{
			name:  "wrong crc",
			extra: []zipEntry{{name: "bin/child.wasm", data: goodWasm(), raw: &zip.FileHeader{Name: "bin/child.wasm", Method: zip.Store, CRC32: 1, CompressedSize64: uint64(len(goodWasm())), UncompressedSize64: uint64(len(goodWasm()))}}},
			file:  "bin/child.wasm", want: []string{"read:", "checksum"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := goodFiles()
			for _, e := range c.extra {
				if e.raw != nil {
					delete(files, e.name) // replaced
				}
			}
			start := time.Now()
			_, err := loadZipBytes(zipFiles(t, files, c.extra...), kernel.Limits{})
			wantRefused(t, err, c.file, c.want...)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refusal took %v", d)
			}
		})
	}
}

func TestZipNotAZip(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("PK\x03\x04"), []byte("not a zip at all"), bytes.Repeat([]byte{0}, 100)} {
		_, err := loadZipBytes(b, kernel.Limits{})
		wantRefused(t, err, "", "not a valid zip archive")
	}
	_, err := LoadZip(bytes.NewReader(nil), MaxPackageBytes+1, kernel.Limits{})
	wantRefused(t, err, "", "at most 268435456 allowed")
}

func TestZipTooManyEntries(t *testing.T) {
	var entries []zipEntry
	for name, b := range goodFiles() {
		entries = append(entries, zipEntry{name: name, data: b})
	}
	for i := len(entries); i <= MaxFiles; i++ {
		entries = append(entries, zipEntry{name: "junk/" + strconv.Itoa(i), store: true})
	}
	_, err := loadZipBytes(buildZip(t, entries...), kernel.Limits{})
	wantRefused(t, err, "", "entries, at most 4096 allowed")
}
