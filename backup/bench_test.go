package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/s3"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/s3test"
	"github.com/weftos/weft/store"
)

// benchBytes is the size of the data BenchmarkBackup backs up:
// WEFT_BENCH_BACKUP_MIB MiB, 1 GiB by default (run it at two sizes to see
// the peak RSS does not grow with the data).
func benchBytes(b *testing.B) int64 {
	if v := os.Getenv("WEFT_BENCH_BACKUP_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("WEFT_BENCH_BACKUP_MIB=%q", v)
		}
		return int64(n) << 20
	}
	return 1 << 30
}

// mixedData writes size bytes of mixed data into the drives directory
// under dir, before the drives are opened: 40 % compressible text in
// 16 MiB files, 40 % random bytes in 16 MiB files, 20 % small files of 2
// to 30 KiB. It returns the paths of the large files and of the small
// ones, to change later.
func mixedData(b *testing.B, dir string, size int64) (large, small []string) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the node keeps what processes persist safe on disk and in encrypted deduplicated backups on any number of buckets while writes go on")
	write := func(pkg, name string, n int64, text bool) {
		p := filepath.Join(dir, "drives", pkg, "files", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, n)
		for int64(len(buf)) < n {
			if text {
				buf = append(buf, words[rng.IntN(len(words))]...)
				buf = append(buf, ' ')
				if rng.IntN(12) == 0 {
					buf = strconv.AppendInt(buf, rng.Int64N(1e9), 10)
					buf = append(buf, '\n')
				}
			} else {
				buf = append(buf, byte(rng.Uint32()), byte(rng.Uint32()>>8), byte(rng.Uint32()>>16), byte(rng.Uint32()>>24))
			}
		}
		if err := os.WriteFile(p, buf[:n], 0o600); err != nil {
			b.Fatal(err)
		}
	}
	const big = 16 << 20
	var done int64
	for i := 0; done < size*4/10; i++ {
		n := min(big, size*4/10-done)
		write("text:bench", fmt.Sprintf("t%03d.txt", i), n, true)
		large = append(large, filepath.Join(dir, "drives", "text:bench", "files", fmt.Sprintf("t%03d.txt", i)))
		done += n
	}
	for i := 0; done < size*8/10; i++ {
		n := min(big, size*8/10-done)
		write("random:bench", fmt.Sprintf("r%03d.bin", i), n, false)
		large = append(large, filepath.Join(dir, "drives", "random:bench", "files", fmt.Sprintf("r%03d.bin", i)))
		done += n
	}
	for i := 0; done < size; i++ {
		n := min(int64(2<<10+rng.IntN(28<<10)), size-done)
		write("small:bench", fmt.Sprintf("d%02d/s%05d", i%64, i), n, i%2 == 0)
		small = append(small, filepath.Join(dir, "drives", "small:bench", "files", fmt.Sprintf("d%02d/s%05d", i%64, i)))
		done += n
	}
	return large, small
}

// change changes 1 % of the data the way a node's data changes: small
// files rewritten whole (0.5 % of the bytes, spread over every directory),
// a log appended to (0.25 %), and regions of large files rewritten in
// place (0.25 %, in 1 MiB stretches). It returns the bytes it changed.
func change(b *testing.B, large, small []string, size int64) int64 {
	rng := rand.New(rand.NewPCG(3, 4))
	randBytes := func(n int64) []byte {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		return p
	}
	var changed int64
	// Small files: every k-th, rewritten with new bytes of its size.
	var smallBytes int64
	for _, p := range small {
		fi, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		smallBytes += fi.Size()
	}
	step := max(1, int(smallBytes/(size/200)))
	for i := 0; i < len(small) && changed < size/200; i += step {
		fi, _ := os.Stat(small[i])
		if err := os.WriteFile(small[i], randBytes(fi.Size()), 0o600); err != nil {
			b.Fatal(err)
		}
		changed += fi.Size()
	}
	// A log: appended to.
	f, err := os.OpenFile(large[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(randBytes(size / 400)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	changed += size / 400
	// Regions of large files, rewritten in place.
	for done := int64(0); done < size/400; done += 1 << 20 {
		p := large[1+rng.IntN(len(large)-1)]
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		fi, _ := f.Stat()
		n := min(1<<20, size/400-done)
		if _, err := f.WriteAt(randBytes(n), rng.Int64N(max(1, fi.Size()-n))); err != nil {
			b.Fatal(err)
		}
		f.Close()
		changed += n
	}
	return changed
}

// cpuMeter reports, per MiB of data, the CPU time (user and system) this
// process and the S3 server spend between its start and report: where
// the time goes on a machine whose cores the two share.
type cpuMeter struct {
	pid          int
	self, server time.Duration
}

func startCPU(b *testing.B, pid int) *cpuMeter {
	m := &cpuMeter{pid: pid}
	m.self, m.server = cpuTimes(b, pid)
	return m
}

// report adds cpu-ms/MiB and server-cpu-ms/MiB for n loops over size bytes.
func (m *cpuMeter) report(b *testing.B, size int64) {
	self, server := cpuTimes(b, m.pid)
	per := float64(b.N) * float64(size) / (1 << 20) / 1e3 // per MiB, in ms
	b.ReportMetric(float64(self-m.self)/float64(time.Second)/per, "cpu-ms/MiB")
	b.ReportMetric(float64(server-m.server)/float64(time.Second)/per, "server-cpu-ms/MiB")
}

// cpuTimes returns the CPU time of this process and of process pid.
func cpuTimes(b *testing.B, pid int) (self, other time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may hold spaces) in parentheses;
	// utime and stime are the 14th and 15th, in clock ticks (100 a second
	// on Linux for every architecture Go runs on).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	return self, time.Duration(ut+st) * (time.Second / 100)
}

// resetPeakRSS makes the kernel forget the process's peak resident set
// size (Linux: /proc/self/clear_refs), so that peakRSS measures from now:
// a phase's own peak, not the data generation's before it.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak RSS: %v", err)
	}
}

// peakRSS is the process's peak resident set size since the last
// resetPeakRSS, in MiB.
func peakRSS(b *testing.B) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("VmHWM: %q", v)
			}
			return kb / 1024
		}
	}
	b.Fatal("/proc/self/status has no VmHWM")
	return 0
}

// BenchmarkBackup backs up benchBytes of mixed data from a node's drives to
// a local S3 server (versitygw), and compares with putting and getting the
// same bytes raw with minio-go. Sub-benchmarks run in order and share the
// repository: first, raw-put, second (after changing 1 % of the data;
// uploaded-% is of first's bytes), restore, raw-get.
func BenchmarkBackup(b *testing.B) {
	size := benchBytes(b)
	srv := s3test.Start(b, 1)
	dir := b.TempDir()
	large, small := mixedData(b, dir, size)
	barrier := new(store.Barrier)
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{Usage: store.NewUsage(size), Barrier: barrier})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	drives, err := store.OpenDrives(filepath.Join(dir, "drives"), st.Usage())
	if err != nil {
		b.Fatal(err)
	}
	defer drives.Close()
	drives.UseBarrier(barrier)
	nodeKey, _, err := identity.LoadOrCreate(dir)
	if err != nil {
		b.Fatal(err)
	}
	// An identity, not a passphrase: scrypt would add a second to every
	// open of the repository, restore's included.
	gen, err := backup.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	key, err := backup.ParseKey(gen)
	if err != nil {
		b.Fatal(err)
	}
	backend := func(prefix string) object.Backend {
		be, err := s3.New(s3.Config{Name: prefix, Endpoint: srv.Endpoint, Bucket: srv.Buckets[0], Prefix: prefix, Region: srv.Region,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			b.Fatal(err)
		}
		return be
	}
	ctx := context.Background()
	newEngine := func(prefix string) *backup.Engine {
		e, err := backup.New(backup.Config{Targets: []backup.Target{{Name: "bench", Backend: backend(prefix)}}, Key: key,
			Source:  backup.Source{Store: st, Drives: drives, Files: map[string]string{identity.KeyFile: filepath.Join(dir, identity.KeyFile)}},
			DataDir: dir, NodeID: nodeKey.NodeID()})
		if err != nil {
			b.Fatal(err)
		}
		if res, err := e.Init(ctx, nil); err != nil || res[0].Err != nil {
			b.Fatal(err, res)
		}
		return e
	}
	run := func(e *backup.Engine) backup.RunResult {
		res, err := e.Run(ctx, nil, nil)
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res)
		}
		return res[0]
	}

	var e *backup.Engine
	var first backup.RunResult
	b.Run("first", func(b *testing.B) {
		b.SetBytes(size)
		runtime.GC()
		resetPeakRSS(b)
		cpu := startCPU(b, srv.Pid)
		for i := 0; b.Loop(); i++ {
			e = newEngine(fmt.Sprintf("first-%d", i))
			first = run(e)
		}
		cpu.report(b, size)
		b.ReportMetric(peakRSS(b), "peak-rss-MiB")
	})
	b.Run("raw-put", func(b *testing.B) {
		b.SetBytes(size)
		cpu := startCPU(b, srv.Pid)
		for i := 0; b.Loop(); i++ {
			be := backend(fmt.Sprintf("raw-%d", i))
			rawPut(b, be, dir)
		}
		cpu.report(b, size)
	})
	changed := change(b, large, small, size)
	b.Run("second", func(b *testing.B) {
		b.SetBytes(size)
		var second *backup.RunResult // the first after the change; later ones find nothing new
		runtime.GC()
		resetPeakRSS(b)
		for b.Loop() {
			r := run(e)
			if second == nil {
				second = &r
			}
		}
		b.ReportMetric(100*float64(second.Stats.PackBytes)/float64(first.Stats.PackBytes), "uploaded-%")
		b.ReportMetric(100*float64(changed)/float64(size), "changed-%")
		b.ReportMetric(peakRSS(b), "peak-rss-MiB")
	})
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(size)
		runtime.GC()
		resetPeakRSS(b)
		cpu := startCPU(b, srv.Pid)
		for i := 0; b.Loop(); i++ {
			dst := filepath.Join(b.TempDir(), "restored")
			os.Mkdir(dst, 0o700)
			_, err := backup.Restore(ctx, backup.RestoreConfig{Target: backup.Target{Name: "bench", Backend: backend("first-0")}, Key: key,
				DataDir: dst, Names: []string{store.FileName, "drives", identity.KeyFile}, Required: []string{store.FileName, identity.KeyFile}})
			if err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(dst)
		}
		cpu.report(b, size)
		b.ReportMetric(peakRSS(b), "peak-rss-MiB")
	})
	b.Run("raw-get", func(b *testing.B) {
		b.SetBytes(size)
		be := backend("raw-0")
		cpu := startCPU(b, srv.Pid)
		for b.Loop() {
			var buf bytes.Buffer
			err := be.List(ctx, "", func(in object.Info) error {
				r, err := be.Get(ctx, in.Name, 0, -1)
				if err != nil {
					return err
				}
				buf.Reset()
				_, err = io.Copy(&buf, r)
				r.Close()
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b, size)
	})
}

// rawPut puts every file under dir's drives to be, in objects of up to 4
// MiB (a pack's size), one after the other.
func rawPut(b *testing.B, be object.Backend, dir string) {
	ctx := context.Background()
	buf := make([]byte, 0, 4<<20)
	n := 0
	flush := func() {
		if len(buf) == 0 {
			return
		}
		if err := be.Put(ctx, fmt.Sprintf("o%06d", n), bytes.NewReader(buf), int64(len(buf))); err != nil {
			b.Fatal(err)
		}
		n++
		buf = buf[:0]
	}
	err := filepath.WalkDir(filepath.Join(dir, "drives"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			m, err := f.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if len(buf) == cap(buf) {
				flush()
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	flush()
}
