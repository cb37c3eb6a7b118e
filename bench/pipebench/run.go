package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// target is one way to reach the server.
type target struct {
	name string
	addr string
	pid  int  // forwarder process (0 for direct)
	tls  bool // clients speak TLS to it
}

// child is a process started by the run role.
type child struct {
	cmd *exec.Cmd
	pid int
}

func startChild(args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %v: %w", args, err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		cmd.Process.Kill()
		return nil, fmt.Errorf("%v did not start: %q %v", args, line, err)
	}
	return &child{cmd: cmd, pid: cmd.Process.Pid}, nil
}

func (c *child) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

type runConfig struct {
	reps            int
	bulk            int64
	pings           int
	idle, idleNaive int
	serverPid       int
}

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:24700", "upstream server address (started here)")
	pipeAddr := fs.String("pipe", "127.0.0.1:24701", "pipegate pipe forwarder address (started here)")
	naiveAddr := fs.String("naive", "127.0.0.1:24702", "naive Go forwarder address (started here)")
	haAddr := fs.String("haproxy", "", "HAProxy frontend address (started by the caller)")
	haPid := fs.Int("haproxy-pid", 0, "HAProxy process id")
	var cfg runConfig
	fs.IntVar(&cfg.reps, "reps", 5, "repetitions of each measurement (medians reported)")
	fs.Int64Var(&cfg.bulk, "bulk", 512<<20, "bytes per bulk measurement")
	fs.IntVar(&cfg.pings, "pings", 5000, "round trips per latency measurement")
	fs.IntVar(&cfg.idle, "idle", 5000, "idle pairs per forwarder")
	fs.IntVar(&cfg.idleNaive, "idle-naive", 3000, "idle pairs for the naive forwarder (6 fds each)")
	tlsIdle := fs.Bool("tls-idle", true, "also measure idle pairs with TLS on the client side (pipegate and naive Go)")
	pipeTLSAddr := fs.String("pipe-tls", "127.0.0.1:24704", "pipegate TLS-terminating forwarder address (started here)")
	naiveTLSAddr := fs.String("naive-tls", "127.0.0.1:24705", "naive Go TLS-terminating forwarder address (started here)")
	fs.Parse(args)

	srv, err := startChild("server", "-listen", *server)
	if err != nil {
		return err
	}
	defer srv.stop()
	cfg.serverPid = srv.pid
	pf, err := startChild("forward", "-mode", "pipe", "-listen", *pipeAddr, "-upstream", *server)
	if err != nil {
		return err
	}
	defer pf.stop()
	nf, err := startChild("forward", "-mode", "naive", "-listen", *naiveAddr, "-upstream", *server)
	if err != nil {
		return err
	}
	defer nf.stop()
	targets := []target{{"direct", *server, 0, false}, {"pipegate", *pipeAddr, pf.pid, false}, {"naive-go", *naiveAddr, nf.pid, false}}
	if *haAddr != "" {
		targets = append(targets, target{"haproxy", *haAddr, *haPid, false})
	}

	fmt.Printf("pipebench: %d reps, %d MiB per bulk run, %d round trips, idle pairs %d (naive %d); GOMAXPROCS of children default, %d CPUs\n",
		cfg.reps, cfg.bulk>>20, cfg.pings, cfg.idle, cfg.idleNaive, numCPU())
	if err := runBulk(cfg, targets); err != nil {
		return err
	}
	if err := runPing(cfg, targets); err != nil {
		return err
	}
	idle := targets[1:]
	if *tlsIdle {
		pt, err := startChild("forward", "-mode", "pipe", "-tls", "-listen", *pipeTLSAddr, "-upstream", *server)
		if err != nil {
			return err
		}
		defer pt.stop()
		nt, err := startChild("forward", "-mode", "naive", "-tls", "-listen", *naiveTLSAddr, "-upstream", *server)
		if err != nil {
			return err
		}
		defer nt.stop()
		idle = append(idle, target{"pipegate TLS", *pipeTLSAddr, pt.pid, true}, target{"naive-go TLS", *naiveTLSAddr, nt.pid, true})
	}
	return runIdle(cfg, idle)
}

// bulkTest is one bulk measurement.
type bulkTest struct {
	name    string
	streams int
	down    bool
}

type sample struct {
	mbps, procCPU, machCPU float64 // MB/s, CPU-seconds per GB (processes involved, whole machine)
}

func runBulk(cfg runConfig, targets []target) error {
	tests := []bulkTest{{"1-stream up", 1, false}, {"1-stream down", 1, true}, {"8-stream up", 8, false}, {"8-stream down", 8, true}}
	res := map[string]map[string][]sample{}
	for rep := range cfg.reps {
		for _, t := range tests {
			for _, tg := range rotate(targets, rep) {
				s, err := bulkOnce(cfg, t, tg)
				if err != nil {
					return fmt.Errorf("%s via %s (rep %d): %w", t.name, tg.name, rep, err)
				}
				if res[t.name] == nil {
					res[t.name] = map[string][]sample{}
				}
				res[t.name][tg.name] = append(res[t.name][tg.name], s)
			}
		}
	}
	fmt.Println("\nBulk throughput (median of reps, target order rotated each rep; ratio to direct in the same run)")
	fmt.Println("and CPU-seconds per GB moved: proc = client + server + forwarder processes, mach = whole machine (includes other load)")
	fmt.Printf("%-14s %-9s %9s %7s %13s %13s\n", "test", "target", "MB/s", "ratio", "cpu-s/GB proc", "cpu-s/GB mach")
	for _, t := range tests {
		direct := median(res[t.name]["direct"], func(s sample) float64 { return s.mbps })
		for _, tg := range targets {
			ss := res[t.name][tg.name]
			m := median(ss, func(s sample) float64 { return s.mbps })
			fmt.Printf("%-14s %-9s %9.0f %6.2fx %13.2f %13.2f\n", t.name, tg.name, m, m/direct,
				median(ss, func(s sample) float64 { return s.procCPU }),
				median(ss, func(s sample) float64 { return s.machCPU }))
		}
	}
	return nil
}

func bulkOnce(cfg runConfig, t bulkTest, tg target) (sample, error) {
	pids := []int{os.Getpid(), cfg.serverPid}
	if tg.pid != 0 {
		pids = append(pids, tg.pid)
	}
	cpu0, mach0 := cpuOf(pids), machineCPU()
	start := time.Now()
	var err error
	if t.down {
		err = parallel(t.streams, cfg.bulk, func(n int64) error { return download(tg.addr, n) })
	} else {
		err = parallel(t.streams, cfg.bulk, func(n int64) error { return upload(tg.addr, n) })
	}
	d := time.Since(start)
	gb := float64(cfg.bulk) / 1e9
	return sample{
		mbps:    float64(cfg.bulk) / d.Seconds() / 1e6,
		procCPU: (cpuOf(pids) - cpu0) / gb,
		machCPU: (machineCPU() - mach0) / gb,
	}, err
}

// rotate starts the order of targets at a different one on each rep, so
// that no target always runs right after the same neighbour.
func rotate(ts []target, rep int) []target {
	k := rep % len(ts)
	return append(append([]target(nil), ts[k:]...), ts[:k]...)
}

func cpuOf(pids []int) float64 {
	var s float64
	for _, p := range pids {
		s += procCPU(p)
	}
	return s
}

func runPing(cfg runConfig, targets []target) error {
	res := map[string][]float64{}
	for rep := range cfg.reps {
		for _, tg := range rotate(targets, rep) {
			d, err := pingPong(tg.addr, cfg.pings)
			if err != nil {
				return fmt.Errorf("ping-pong via %s: %w", tg.name, err)
			}
			res[tg.name] = append(res[tg.name], float64(d.Microseconds()))
		}
	}
	fmt.Println("\nRequest/response latency, 64-byte round trip (median µs; ratio to direct)")
	direct := median(res["direct"], func(f float64) float64 { return f })
	for _, tg := range targets {
		m := median(res[tg.name], func(f float64) float64 { return f })
		fmt.Printf("%-9s %7.1f µs %6.2fx\n", tg.name, m, m/direct)
	}
	return nil
}

func runIdle(cfg runConfig, fwds []target) error {
	fmt.Println("\nIdle pairs: forwarder process RSS and open files per pair (delta after opening; each pair answered once)")
	fmt.Printf("%-13s %6s %12s %10s %12s\n", "target", "pairs", "RSS delta", "KiB/pair", "fds/pair")
	for _, tg := range fwds {
		n := cfg.idle
		if strings.HasPrefix(tg.name, "naive-go") {
			n = cfg.idleNaive
		}
		rss0, fd0 := procRSS(tg.pid), procFDs(tg.pid)
		conns, err := openIdle(tg.addr, n, tg.tls)
		if err != nil {
			closeAll(conns)
			return fmt.Errorf("idle via %s: %w", tg.name, err)
		}
		time.Sleep(2 * time.Second) // let the forwarder settle (GC, stack shrinking)
		rss1, fd1 := procRSS(tg.pid), procFDs(tg.pid)
		closeAll(conns)
		fmt.Printf("%-13s %6d %9.1f MiB %10.2f %12.2f\n", tg.name, n, float64(rss1-rss0)/(1<<20),
			float64(rss1-rss0)/1024/float64(n), float64(fd1-fd0)/float64(n))
		waitFDs(tg.pid, fd0)
	}
	return nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

func numCPU() int { return runtime.NumCPU() }

// waitFDs waits (bounded) until the forwarder has closed the pairs.
func waitFDs(pid, want int) {
	for i := 0; i < 100 && procFDs(pid) > want+16; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}
