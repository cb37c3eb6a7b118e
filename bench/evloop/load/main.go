// Command load is the client and server half of bench/evloop.sh: it runs
// the backend (an echo/sink server) and drives clients through each target
// (direct, evfwd, HAProxy ...), in this process, apart from the forwarders
// it measures. For every target it reports, in one run:
//
//   - RSS and open files per idle pair in the forwarder process (-idle N),
//   - single-stream bulk upload throughput (-bulk MiB), median of -rounds,
//   - 64-byte ping-pong round-trip p50/p99 (-pingpong count per round),
//
// and ratios to direct and to the target named haproxy.
//
//	load -server 127.0.0.1:17100 -target direct=127.0.0.1:17100 \
//	     -target evloop=127.0.0.1:17101,pid=1234 -idle 9000 -bulk 512
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/internal/procfs"
)

type target struct {
	name string
	addr string
	pid  int // forwarder process, 0 for direct
}

type targets []target

func (t *targets) String() string { return fmt.Sprint(*t) }

func (t *targets) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("-target %q: want name=addr[,pid=N]", s)
	}
	addr, pidStr, _ := strings.Cut(rest, ",pid=")
	tg := target{name: name, addr: addr}
	if pidStr != "" {
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			return fmt.Errorf("-target %q: pid: %w", s, err)
		}
		tg.pid = pid
	}
	*t = append(*t, tg)
	return nil
}

func main() {
	var tgs targets
	server := flag.String("server", "127.0.0.1:17100", "backend address to listen on")
	flag.Var(&tgs, "target", "name=addr[,pid=N] (repeatable); the one named direct is the baseline")
	idle := flag.Int("idle", 9000, "idle pairs per forwarder (0: skip)")
	bulkMiB := flag.Int("bulk", 256, "MiB per bulk upload (0: skip)")
	rounds := flag.Int("rounds", 5, "rounds of bulk and ping-pong, targets interleaved")
	pings := flag.Int("pingpong", 2000, "64-byte round trips per round (0: skip)")
	settle := flag.Duration("settle", time.Second, "wait before reading RSS")
	verbose := flag.Bool("v", false, "print every round")
	flag.Parse()
	if len(tgs) == 0 {
		log.Fatal("load: no -target")
	}
	srv, err := startServer(*server)
	if err != nil {
		log.Fatalf("load: %v", err)
	}
	if *idle > 0 {
		fmt.Printf("== idle: %d pairs per forwarder, RSS and open files of the forwarder process\n", *idle)
		fmt.Printf("%-10s %10s %10s %12s\n", "target", "KiB/pair", "fds/pair", "RSS MiB")
		for _, tg := range tgs {
			if tg.pid == 0 {
				continue
			}
			if err := idlePhase(srv, tg, *idle, *settle); err != nil {
				log.Fatalf("load: idle %s: %v", tg.name, err)
			}
		}
	}
	if *bulkMiB > 0 {
		bulk := make(map[string][]float64)
		cpu := make(map[string][]float64)
		for r := 0; r < *rounds; r++ {
			for _, tg := range tgs {
				mbps, cpuPerGB, err := bulkOnce(tg, int64(*bulkMiB)<<20)
				if err != nil {
					log.Fatalf("load: bulk %s: %v", tg.name, err)
				}
				bulk[tg.name] = append(bulk[tg.name], mbps)
				if *verbose {
					fmt.Printf("   round %d %-10s %8.1f MB/s %6.2f CPU-s/GB\n", r, tg.name, mbps, cpuPerGB)
				}
				cpu[tg.name] = append(cpu[tg.name], cpuPerGB)
			}
		}
		fmt.Printf("== bulk: 1 stream upload of %d MiB, %d rounds: median and best MB/s, forwarder CPU-s per GB\n", *bulkMiB, *rounds)
		report(tgs, bulk, cpu, "MB/s", "med CPU-s/GB", true)
	}
	if *pings > 0 {
		p50 := make(map[string][]float64)
		p99 := make(map[string][]float64)
		for r := 0; r < *rounds; r++ {
			for _, tg := range tgs {
				a, b, err := pingPong(tg, *pings)
				if err != nil {
					log.Fatalf("load: ping-pong %s: %v", tg.name, err)
				}
				p50[tg.name] = append(p50[tg.name], a)
				p99[tg.name] = append(p99[tg.name], b)
			}
		}
		fmt.Printf("== ping-pong: 64 B round trips, %d per round, %d rounds: median and best p50, median p99 (µs)\n", *pings, *rounds)
		report(tgs, p50, p99, "p50 µs", "med p99 µs", false)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// report prints medians and bests (the noise of a shared machine only ever
// slows a run down, so the best round is the steadier figure) and their
// ratios to direct and haproxy.
func report(tgs targets, main, extra map[string][]float64, unit, extraName string, higherBetter bool) {
	best := func(v []float64) float64 {
		if higherBetter {
			return slices.Max(v)
		}
		return slices.Min(v)
	}
	ratio := func(v float64, name string, pick func([]float64) float64) string {
		b, ok := main[name]
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.2f", v/pick(b))
	}
	fmt.Printf("%-10s %10s %8s %8s | %10s %8s %8s | %14s\n", "target", "med "+unit, "/direct", "/haproxy", "best", "/direct", "/haproxy", extraName)
	for _, tg := range tgs {
		m, b := median(main[tg.name]), best(main[tg.name])
		fmt.Printf("%-10s %10.1f %8s %8s | %10.1f %8s %8s | %14.2f\n", tg.name,
			m, ratio(m, "direct", median), ratio(m, "haproxy", median),
			b, ratio(b, "direct", best), ratio(b, "haproxy", best), median(extra[tg.name]))
	}
}

// server is the backend: the first byte of a connection picks the mode.
type server struct {
	conns atomic.Int64
}

func startServer(addr string) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &server{}
	go acceptLoop(s, ln)
	return s, nil
}

func acceptLoop(s *server, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("load: accept: %v", err)
		}
		s.conns.Add(1)
		go serveConn(s, c)
	}
}

// serveConn: 'e' echoes, 's' sinks to EOF and answers the byte count.
// Plain read/write loops: io.Copy between sockets would splice and hold a
// kernel pipe (two more files) per idle connection.
func serveConn(s *server, c net.Conn) {
	defer s.conns.Add(-1)
	defer c.Close()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case 'e':
		buf := make([]byte, 4<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case 's':
		buf := make([]byte, 256<<10)
		var total int64
		for {
			n, err := c.Read(buf)
			total += int64(n)
			if err != nil {
				break
			}
		}
		var out [8]byte
		binary.BigEndian.PutUint64(out[:], uint64(total))
		c.Write(out[:])
	}
}

// procRSS returns pid's resident memory in bytes.
func procRSS(pid int) (int64, error) {
	st, err := procfs.ReadStatus(pid)
	return st.RSSKiB << 10, err
}

// procCPU returns user+system CPU seconds of pid (0 if it cannot be read).
func procCPU(pid int) float64 {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.CPU().Seconds()
}

// idlePhase opens n pairs through tg, makes sure each carried a byte both
// ways, lets them go idle and measures the forwarder.
func idlePhase(srv *server, tg target, n int, settle time.Duration) error {
	for i := 0; srv.conns.Load() > 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond) // let the previous phase's conns go
	}
	rss0, err := procRSS(tg.pid)
	if err != nil {
		return err
	}
	fd0, err := procfs.OpenFDs(tg.pid)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	next := atomic.Int64{}
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := net.DialTimeout("tcp", tg.addr, 5*time.Second)
				if err == nil {
					var b [1]byte
					c.SetDeadline(time.Now().Add(5 * time.Second)) // a forwarder out of files never answers
					if _, err = c.Write([]byte("e!")); err == nil {
						_, err = io.ReadFull(c, b[:])
					}
					c.SetDeadline(time.Time{})
				}
				if err != nil {
					if c != nil {
						c.Close()
					}
					firstErr.CompareAndSwap(nil, fmt.Errorf("pair %d: %w", i, err))
					next.Store(int64(n)) // stop the other workers
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	ok := 0
	for _, c := range conns {
		if c != nil {
			ok++
		}
	}
	note := ""
	if v := firstErr.Load(); v != nil {
		note = fmt.Sprintf("  (only %d pairs: %v)", ok, v)
	}
	if ok == 0 {
		return firstErr.Load().(error)
	}
	time.Sleep(settle)
	rss1, err := procRSS(tg.pid)
	if err != nil {
		return err
	}
	fd1, err := procfs.OpenFDs(tg.pid)
	if err != nil {
		return err
	}
	fmt.Printf("%-10s %10.2f %10.2f %12.1f%s\n", tg.name, float64(rss1-rss0)/float64(ok)/1024, float64(fd1-fd0)/float64(ok), float64(rss1)/(1<<20), note)
	return nil
}

var chunk = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// bulkOnce uploads size bytes through tg and returns MB/s and the
// forwarder's CPU seconds per GB.
func bulkOnce(tg target, size int64) (float64, float64, error) {
	c, err := net.Dial("tcp", tg.addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	cpu0 := procCPU(tg.pid)
	start := time.Now()
	if _, err := c.Write([]byte("s")); err != nil {
		return 0, 0, err
	}
	for sent := int64(0); sent < size; {
		n := min(int64(len(chunk)), size-sent)
		if _, err := c.Write(chunk[:n]); err != nil {
			return 0, 0, err
		}
		sent += n
	}
	c.(*net.TCPConn).CloseWrite()
	var out [8]byte
	if _, err := io.ReadFull(c, out[:]); err != nil {
		return 0, 0, err
	}
	el := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(out[:])); got != size {
		return 0, 0, fmt.Errorf("server got %d bytes of %d", got, size)
	}
	cpu := 0.0
	if tg.pid != 0 {
		cpu = (procCPU(tg.pid) - cpu0) / (float64(size) / 1e9)
	}
	return float64(size) / 1e6 / el.Seconds(), cpu, nil
}

// pingPong returns p50 and p99 of n 64-byte round trips in µs.
func pingPong(tg target, n int) (float64, float64, error) {
	c, err := net.Dial("tcp", tg.addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	msg := make([]byte, 64)
	in := make([]byte, 64)
	if _, err := c.Write([]byte("e")); err != nil {
		return 0, 0, err
	}
	lat := make([]float64, 0, n)
	for i := 0; i < n+50; i++ { // 50 warm-up trips
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, 0, err
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return 0, 0, err
		}
		if i >= 50 {
			lat = append(lat, float64(time.Since(t0).Nanoseconds())/1e3)
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}
