// SPDX-License-Identifier: Apache-2.0
//
// tools/bench/etcd/main.go: shoal-bench's etcd driver.
//
// It loads etcd the way etcd's own benchmark tool does: C clients share K
// gRPC connections (clientv3.Client), each client keeps one request in
// flight. It prints one JSON object on standard output: the operations
// completed in the measured window, errors by gRPC code (the numbers of
// shoal's status codes), and the latency histogram as [bucket, count]
// pairs in shoal-bench's log-linear layout (tools/bench/bench.h), which
// bucketIndex below must match.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/version"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
)

const (
	subBits = 7
	sub     = 1 << subBits
	maxExp  = 40
	buckets = (maxExp - subBits + 1) * sub
)

// bucketIndex is bench_hist_index of tools/bench/hist.c.
func bucketIndex(v uint64) int {
	top := uint64(1)<<maxExp - 1
	if v > top {
		v = top
	}
	if v < sub {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(v)
	return (e-subBits+1)*sub + int((v>>(e-subBits))-sub)
}

type hist struct{ b []uint64 }

func newHist() *hist { return &hist{b: make([]uint64, buckets)} }

func (h *hist) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.b[bucketIndex(uint64(ns))]++
}

func (h *hist) merge(o *hist) {
	for i, n := range o.b {
		h.b[i] += n
	}
}

func (h *hist) pairs() [][2]uint64 {
	out := [][2]uint64{}
	for i, n := range h.b {
		if n > 0 {
			out = append(out, [2]uint64{uint64(i), n})
		}
	}
	return out
}

type report struct {
	Version   string            `json:"version"`
	Go        string            `json:"go"`
	Workload  string            `json:"workload"`
	Ops       uint64            `json:"ops"`
	Seconds   float64           `json:"seconds"`
	Errors    map[string]uint64 `json:"errors"`
	Hist      [][2]uint64       `json:"hist"`
	AckHist   [][2]uint64       `json:"ack_hist"`
	Writes    uint64            `json:"writes"`
	Delivered uint64            `json:"delivered"`
	Expected  uint64            `json:"expected"`
	Note      string            `json:"note,omitempty"`
	// failover only
	Killed        int     `json:"killed"`
	UnavailableMs float64 `json:"unavailable_ms"`
	Acked         uint64  `json:"acked"`
	Failed        uint64  `json:"failed"`
	Lost          uint64  `json:"lost"`
}

type opts struct {
	endpoints []string
	conns     int
	clients   int
	duration  time.Duration
	ops       uint64
	warmup    time.Duration
	valueSize int
	keys      int
	readRatio float64
	watchers  int
	rate      int
	workload  string
	pids      []int
	tag       string
}

// window is the measured interval and the shared completion count.
type window struct {
	start, end time.Time
	done       uint64
	ops        uint64
	mu         sync.Mutex
}

func (w *window) running(now time.Time) bool {
	if w.ops > 0 {
		return atomic.LoadUint64(&w.done) < w.ops
	}
	return now.Before(w.end)
}

// count says whether a request sent at t0 and answered at now is measured.
func (w *window) count(t0, now time.Time) bool {
	if t0.Before(w.start) {
		return false
	}
	if w.ops > 0 {
		n := atomic.AddUint64(&w.done, 1)
		if n == w.ops {
			w.mu.Lock()
			w.end = now
			w.mu.Unlock()
		}
		return n <= w.ops
	}
	return !now.After(w.end)
}

func grpcCode(err error) string {
	if s, ok := status.FromError(err); ok {
		return strconv.Itoa(int(s.Code()))
	}
	if err == context.DeadlineExceeded {
		return "4"
	}
	return "13"
}

func dial(o *opts) ([]*clientv3.Client, error) {
	cs := make([]*clientv3.Client, o.conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   o.endpoints,
			DialTimeout: 10 * time.Second,
			LogConfig:   quietLog(),
		})
		if err != nil {
			return nil, err
		}
		cs[i] = c
	}
	return cs, nil
}

func key(i int) string { return fmt.Sprintf("/bench/k%08d", i) }

// load runs the request/response workloads: put, range, list, mixed.
func load(o *opts, cs []*clientv3.Client, r *report) {
	value := strings.Repeat("v", o.valueSize)
	ctx := context.Background()
	for i := 0; i < o.keys; i++ {
		if _, err := cs[0].Put(ctx, key(i), value); err != nil {
			r.Note = "preload: " + err.Error()
			return
		}
	}
	w := &window{ops: o.ops}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := newHist()
	start := make(chan struct{})
	for c := 0; c < o.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			h := newHist()
			errs := map[string]uint64{}
			var ops uint64
			cli := cs[c%len(cs)]
			seq := uint64(c) * 2654435761
			<-start
			for now := time.Now(); w.running(now); now = time.Now() {
				seq = seq*6364136223846793005 + 1442695040888963407
				k := key(int((seq >> 33) % uint64(o.keys)))
				var err error
				t0 := time.Now()
				switch {
				case o.workload == "put" || (o.workload == "mixed" &&
					float64((seq>>20)%10000) >= o.readRatio*10000):
					_, err = cli.Put(ctx, k, value)
				case o.workload == "list":
					_, err = cli.Get(ctx, "/bench/k0000000",
						clientv3.WithPrefix())
				default:
					_, err = cli.Get(ctx, k)
				}
				t1 := time.Now()
				if !w.count(t0, t1) {
					continue
				}
				ops++
				h.add(t1.Sub(t0).Nanoseconds())
				if err != nil {
					errs[grpcCode(err)]++
				}
			}
			mu.Lock()
			total.merge(h)
			r.Ops += ops
			for k, n := range errs {
				r.Errors[k] += n
			}
			mu.Unlock()
		}(c)
	}
	w.start = time.Now().Add(o.warmup)
	w.end = w.start.Add(o.duration)
	if o.ops > 0 {
		w.end = time.Now().Add(24 * time.Hour)
	}
	close(start)
	wg.Wait()
	r.Seconds = w.end.Sub(w.start).Seconds()
	r.Hist = total.pairs()
}

// quietLog keeps the client library's retry warnings, a few per put
// while a leader is killed, off shoal-bench's terminal.
func quietLog() *zap.Config {
	c := zap.NewProductionConfig()
	c.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	return &c
}

// leaderIndex is the index of the endpoint whose member leads.
func leaderIndex(o *opts, cli *clientv3.Client) (int, error) {
	for i, ep := range o.endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no member says it leads")
}

// failover is shoal-bench's failover workload against etcd: C clients
// put new keys through the shared connections (each with every
// endpoint, so the client library moves to a live member), the leader
// is killed with SIGKILL after the warm-up, and the stream goes on for
// the duration. Unavailability runs from the kill to the first
// acknowledged put sent after it. Each acknowledged key is then read
// back (linearizable) through the survivors: one missing is lost.
func failover(o *opts, cs []*clientv3.Client, r *report) {
	value := strings.Repeat("v", o.valueSize)
	lead, err := leaderIndex(o, cs[0])
	if err != nil || lead >= len(o.pids) {
		r.Note = "leader: " + fmt.Sprint(err)
		return
	}
	r.Killed = lead
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stop int32
	var killNs int64 // UnixNano of the kill; 0 before
	var firstAfter int64
	total := newHist()
	acked := make([][]string, o.clients)
	start := time.Now()
	for c := 0; c < o.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			h := newHist()
			errs := map[string]uint64{}
			var ops uint64
			cli := cs[c%len(cs)]
			for seq := 0; atomic.LoadInt32(&stop) == 0; seq++ {
				k := fmt.Sprintf("/fo/%s/c%d/%d", o.tag, c, seq)
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(),
					10*time.Second)
				_, err := cli.Put(ctx, k, value)
				cancel()
				t1 := time.Now()
				ops++
				if err != nil {
					errs[grpcCode(err)]++
					continue
				}
				h.add(t1.Sub(t0).Nanoseconds())
				acked[c] = append(acked[c], k)
				kn := atomic.LoadInt64(&killNs)
				if kn != 0 && t0.UnixNano() >= kn {
					mu.Lock()
					if firstAfter == 0 || t1.UnixNano() < firstAfter {
						firstAfter = t1.UnixNano()
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			total.merge(h)
			r.Ops += ops
			for k, n := range errs {
				r.Errors[k] += n
				r.Failed += n
			}
			mu.Unlock()
		}(c)
	}
	time.Sleep(o.warmup)
	kill := time.Now()
	atomic.StoreInt64(&killNs, kill.UnixNano())
	syscall.Kill(o.pids[lead], syscall.SIGKILL)
	time.Sleep(o.duration)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	r.Hist = total.pairs()
	r.UnavailableMs = -1
	if firstAfter != 0 {
		r.UnavailableMs = float64(firstAfter-kill.UnixNano()) / 1e6
	}
	// Read back through the survivors only.
	var live []string
	for i, ep := range o.endpoints {
		if i != lead {
			live = append(live, ep)
		}
	}
	rc, err := clientv3.New(clientv3.Config{Endpoints: live,
		DialTimeout: 10 * time.Second, LogConfig: quietLog()})
	if err != nil {
		r.Note = "read-back: " + err.Error()
		return
	}
	defer rc.Close()
	keys := make(chan string, 1024)
	var lost, checked uint64
	var rerr atomic.Value
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				ctx, cancel := context.WithTimeout(context.Background(),
					10*time.Second)
				resp, err := rc.Get(ctx, k)
				cancel()
				if err != nil {
					rerr.Store(err.Error())
					continue
				}
				atomic.AddUint64(&checked, 1)
				if resp.Count == 0 {
					atomic.AddUint64(&lost, 1)
				}
			}
		}()
	}
	for _, ks := range acked {
		for _, k := range ks {
			keys <- k
		}
		r.Acked += uint64(len(ks))
	}
	close(keys)
	wg.Wait()
	r.Lost = lost
	if e := rerr.Load(); e != nil {
		r.Note = "read-back: " + e.(string)
	}
}

// watch runs W watchers over the connections and one paced writer; the
// value of each put is its send time, so delivery latency is measured.
func watch(o *opts, cs []*clientv3.Client, r *report) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var delivered uint64
	var mu sync.Mutex
	total := newHist()
	var start, end int64
	var wg sync.WaitGroup
	for i := 0; i < o.watchers; i++ {
		wch := cs[i%len(cs)].Watch(ctx, "/bench/w", clientv3.WithPrefix())
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHist()
			for resp := range wch {
				now := time.Now().UnixNano()
				for _, ev := range resp.Events {
					t0, err := strconv.ParseInt(
						strings.SplitN(string(ev.Kv.Value), " ", 2)[0], 10, 64)
					if err != nil || t0 < atomic.LoadInt64(&start) ||
						t0 > atomic.LoadInt64(&end) {
						continue
					}
					h.add(now - t0)
					atomic.AddUint64(&delivered, 1)
				}
			}
			mu.Lock()
			total.merge(h)
			mu.Unlock()
		}()
	}
	time.Sleep(200 * time.Millisecond) // let every watch be registered
	pad := strings.Repeat("v", o.valueSize)
	ack := newHist()
	now := time.Now()
	atomic.StoreInt64(&start, now.Add(o.warmup).UnixNano())
	atomic.StoreInt64(&end, now.Add(o.warmup+o.duration).UnixNano())
	step := time.Second / time.Duration(o.rate)
	sem := make(chan struct{}, 16)
	var pw sync.WaitGroup
	for due := now; due.UnixNano() < atomic.LoadInt64(&end); due = due.Add(step) {
		time.Sleep(time.Until(due))
		if time.Now().UnixNano() >= atomic.LoadInt64(&end) {
			break // behind the schedule: the window is over
		}
		sem <- struct{}{}
		pw.Add(1)
		go func(i int64) {
			defer pw.Done()
			t0 := time.Now()
			v := strconv.FormatInt(t0.UnixNano(), 10) + " " + pad
			_, err := cs[0].Put(ctx, fmt.Sprintf("/bench/w%02d", i%16), v)
			t1 := time.Now()
			<-sem
			mu.Lock()
			defer mu.Unlock()
			if t0.UnixNano() < atomic.LoadInt64(&start) {
				return
			}
			if err != nil {
				r.Errors[grpcCode(err)]++
				return
			}
			ack.add(t1.Sub(t0).Nanoseconds())
			r.Writes++
		}(due.UnixNano() / int64(step))
	}
	pw.Wait()
	r.Expected = r.Writes * uint64(o.watchers)
	for t := time.Now(); time.Since(t) < 3*time.Second; {
		if atomic.LoadUint64(&delivered) >= r.Expected {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	r.Delivered = atomic.LoadUint64(&delivered)
	r.Ops = r.Delivered
	r.Seconds = o.duration.Seconds()
	r.Hist = total.pairs()
	r.AckHist = ack.pairs()
}

func main() {
	var o opts
	var eps string
	var dur, warm float64
	flag.StringVar(&eps, "endpoints", "http://127.0.0.1:2379", "etcd client URLs, comma-separated")
	flag.IntVar(&o.conns, "conns", 100, "gRPC connections shared by the clients")
	flag.IntVar(&o.clients, "clients", 1000, "clients, each one request at a time")
	flag.Float64Var(&dur, "duration", 10, "measured seconds (when -ops is 0)")
	flag.Uint64Var(&o.ops, "ops", 0, "measured operations (0: use -duration)")
	flag.Float64Var(&warm, "warmup", 1, "seconds before measuring")
	flag.IntVar(&o.valueSize, "value-bytes", 200, "bytes of each value")
	flag.IntVar(&o.keys, "keys", 100, "keys read and written")
	flag.Float64Var(&o.readRatio, "read-ratio", 0.9, "mixed: share of reads")
	flag.IntVar(&o.watchers, "watchers", 1000, "watch: watchers")
	flag.IntVar(&o.rate, "rate", 1000, "watch: puts per second")
	flag.StringVar(&o.workload, "workload", "put", "put, range, list, mixed, watch or failover")
	var pids string
	flag.StringVar(&pids, "pids", "", "failover: the members' pids, in the order of -endpoints")
	flag.StringVar(&o.tag, "tag", "r", "failover: names the keys of this round")
	flag.Parse()
	for _, p := range strings.Split(pids, ",") {
		if n, err := strconv.Atoi(p); err == nil {
			o.pids = append(o.pids, n)
		}
	}
	o.endpoints = strings.Split(eps, ",")
	o.duration = time.Duration(dur * float64(time.Second))
	o.warmup = time.Duration(warm * float64(time.Second))
	if o.conns > o.clients && o.workload != "watch" {
		o.conns = o.clients
	}
	if o.conns < 1 || o.clients < 1 || o.keys < 1 || o.rate < 1 {
		fmt.Fprintln(os.Stderr, "shoal-bench-etcd: counts must be positive")
		os.Exit(2)
	}
	r := report{Version: version.Version, Go: runtime.Version(),
		Workload: o.workload, Errors: map[string]uint64{}}
	cs, err := dial(&o)
	if err != nil {
		r.Note = "connect: " + err.Error()
	} else if o.workload == "watch" {
		watch(&o, cs, &r)
	} else if o.workload == "failover" {
		failover(&o, cs, &r)
	} else {
		load(&o, cs, &r)
	}
	for _, c := range cs {
		c.Close()
	}
	if r.Hist == nil {
		r.Hist = [][2]uint64{}
	}
	if r.AckHist == nil {
		r.AckHist = [][2]uint64{}
	}
	json.NewEncoder(os.Stdout).Encode(&r)
}
