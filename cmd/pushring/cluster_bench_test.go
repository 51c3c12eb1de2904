package main

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushring/pushring/internal/cputime"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// BenchmarkClusterPush compares a push to the peer that owns its group
// with a push to a peer that forwards it to the owner over gRPC: both over
// HTTP on loopback, to a 3-peer in-process cluster, a 40-series text body
// as a fleet node sends it, with one copy per group (rf=1) and two (rf=2:
// the owner copies the group to its second owner before it answers). The
// figures in BENCHMARKS.md are the ratios; serial runs report the 50th and
// 99th percentile latency a pusher sees.
func BenchmarkClusterPush(b *testing.B) {
	for _, rf := range []int{1, 2} {
		b.Run(fmt.Sprintf("rf=%d", rf), func(b *testing.B) { benchClusterPushRF(b, rf) })
	}
}

func benchClusterPushRF(b *testing.B, rf int) {
	peers, paths := startBenchCluster(b, fmt.Sprintf("--cluster.replication-factor=%d", rf))
	for _, series := range []int{40, 400} {
		b.Run(fmt.Sprintf("series=%d", series), func(b *testing.B) { benchClusterPush(b, peers, paths, series) })
	}
}

// startBenchCluster starts a 3-peer in-process cluster with the extra
// flags and returns its peers and the paths of 64 groups peer-1 owns:
// pushed to peer-1 they are local, pushed to peer-0 they are forwarded.
func startBenchCluster(b *testing.B, extra ...string) ([]*inProcPeer, []string) {
	p0 := startInProcPeer(b, "peer-0", nil, extra...)
	peers := []*inProcPeer{p0, startInProcPeer(b, "peer-1", []string{p0.gossip}, extra...), startInProcPeer(b, "peer-2", []string{p0.gossip}, extra...)}
	waitConverged(b, peers)
	var members []shard.Member
	for _, p := range peers {
		members = append(members, shard.Member{ID: p.name})
	}
	placement, err := shard.NewPlacement(members)
	if err != nil {
		b.Fatal(err)
	}
	var paths []string
	for i := 0; len(paths) < 64; i++ {
		inst := fmt.Sprintf("node-%d", i)
		if placement.Owner(store.NewGroupKey(map[string]string{"job": "bench", "instance": inst}).Hash()).ID == "peer-1" {
			paths = append(paths, "/metrics/job/bench/instance/"+inst)
		}
	}
	return peers, paths
}

func benchClusterPush(b *testing.B, peers []*inProcPeer, paths []string, series int) {
	var body strings.Builder
	body.WriteString("# TYPE bench_value gauge\n")
	for i := range series {
		fmt.Fprintf(&body, "bench_value{series=\"s%d\"} %d\n", i, i)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	one := func(b *testing.B, via *inProcPeer, i int) bool {
		req, _ := http.NewRequest(http.MethodPut, via.http+paths[i%len(paths)], strings.NewReader(body.String()))
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("status %d", resp.StatusCode)
			return false
		}
		return true
	}
	// serial: one pusher, so ns/op is the latency a pusher sees.
	serial := func(b *testing.B, via *inProcPeer) {
		b.ReportAllocs()
		defer cputime.Start().PerOp(b)
		var took []time.Duration
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if !one(b, via, i) {
				return
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
	}
	// parallel: as many pushers as cores; all three peers share this
	// process, so ns/op is the CPU of every peer a push passes through.
	parallel := func(b *testing.B, via *inProcPeer) {
		b.ReportAllocs()
		defer cputime.Start().PerOp(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if !one(b, via, i) {
					return
				}
			}
		})
	}
	b.Run("serial/local", func(b *testing.B) { serial(b, peers[1]) })
	b.Run("serial/forwarded", func(b *testing.B) { serial(b, peers[0]) })
	b.Run("parallel/local", func(b *testing.B) { parallel(b, peers[1]) })
	b.Run("parallel/forwarded", func(b *testing.B) { parallel(b, peers[0]) })
}

// BenchmarkClusterConvergence fills a 3-peer in-process cluster with
// 20,000 groups of 10 series, then measures the time from the start of a
// graceful leave, and from the start of a join, until every group is
// exposed by exactly one peer with its value. Run it once:
// -bench ClusterConvergence -benchtime 1x. It reports series per peer
// max/mean after the fill, and both times in seconds.
func BenchmarkClusterConvergence(b *testing.B) {
	const groups, series = 20_000, 10
	for b.Loop() {
		p0 := startInProcPeer(b, "peer-0", nil)
		peers := []*inProcPeer{p0, startInProcPeer(b, "peer-1", []string{p0.gossip}), startInProcPeer(b, "peer-2", []string{p0.gossip})}
		waitConverged(b, peers)
		want := map[string]float64{}
		work := make(chan int)
		var wg sync.WaitGroup
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		for w := range 8 {
			wg.Go(func() {
				for i := range work {
					var body strings.Builder
					body.WriteString("# TYPE ip_value gauge\n")
					fmt.Fprintf(&body, "ip_value %d\n# TYPE cv_series gauge\n", i)
					for s := range series - 3 { // plus the two push-time gauges
						fmt.Fprintf(&body, "cv_series{s=\"%d\"} 1\n", s)
					}
					req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/metrics/job/cv/instance/n%d", peers[(i+w)%3].http, i), strings.NewReader(body.String()))
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
					}
				}
			})
		}
		for i := range groups {
			want[fmt.Sprintf("n%d", i)] = float64(i)
			work <- i
		}
		close(work)
		wg.Wait()
		got, perPeer := exposure(b, peers, "ip_value")
		if err := exactlyOnce(got, want); err != nil {
			b.Fatal(err)
		}
		maxN := 0
		for _, n := range perPeer {
			maxN = max(maxN, n)
		}
		b.ReportMetric(float64(maxN)/(float64(groups)/3), "max/mean")

		start := time.Now()
		peers[1].stop(b)
		rest := []*inProcPeer{peers[0], peers[2]}
		eventually(b, 60*time.Second, func() error {
			got, _ := exposure(b, rest, "ip_value")
			return exactlyOnce(got, want)
		})
		b.ReportMetric(time.Since(start).Seconds(), "leave-s")

		start = time.Now()
		joined := startInProcPeer(b, "peer-3", []string{p0.gossip})
		rest = append(rest, joined)
		eventually(b, 60*time.Second, func() error {
			got, perPeer := exposure(b, rest, "ip_value")
			if perPeer[joined.name] == 0 {
				return fmt.Errorf("the new peer holds nothing yet")
			}
			return exactlyOnce(got, want)
		})
		b.ReportMetric(time.Since(start).Seconds(), "join-s")
		for _, p := range rest {
			p.stop(b)
		}
	}
}

// BenchmarkClusterHeapPerSeries fills a 3-peer in-process cluster with
// 20,000 groups of 10 series through random peers, with one and with two
// copies per group, and reports the heap in use after a GC per distinct
// series pushed (all three peers share the process). Run it once:
// -bench ClusterHeapPerSeries -benchtime 1x.
func BenchmarkClusterHeapPerSeries(b *testing.B) {
	const groups, series = 20_000, 10
	for _, rf := range []int{1, 2} {
		b.Run(fmt.Sprintf("rf=%d", rf), func(b *testing.B) {
			for b.Loop() {
				flag := fmt.Sprintf("--cluster.replication-factor=%d", rf)
				p0 := startInProcPeer(b, "peer-0", nil, flag)
				peers := []*inProcPeer{p0, startInProcPeer(b, "peer-1", []string{p0.gossip}, flag), startInProcPeer(b, "peer-2", []string{p0.gossip}, flag)}
				waitConverged(b, peers)
				var before runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
				work := make(chan int)
				var wg sync.WaitGroup
				for w := range 8 {
					wg.Go(func() {
						for i := range work {
							var body strings.Builder
							body.WriteString("# TYPE hp_series gauge\n")
							for s := range series - 2 { // plus the two push-time gauges
								fmt.Fprintf(&body, "hp_series{s=\"%d\"} %d\n", s, i)
							}
							req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/metrics/job/hp/instance/n%d", peers[(i+w)%3].http, i), strings.NewReader(body.String()))
							resp, err := client.Do(req)
							if err != nil {
								b.Error(err)
								continue
							}
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != http.StatusOK {
								b.Errorf("status %d", resp.StatusCode)
							}
						}
					})
				}
				for i := range groups {
					work <- i
				}
				close(work)
				wg.Wait()
				client.CloseIdleConnections()
				var after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(groups*series), "heap-B/series")
				for _, p := range peers {
					p.stop(b)
				}
			}
		})
	}
}
