package main

import "testing"

// BenchmarkClusterPushPlane compares, in one run, BenchmarkClusterPush's
// 40-series push with one copy per group on an open peer plane with the
// same push on a closed one (mutual TLS for gRPC and gossip, and a gossip
// key): the forwarded push pays for TLS on its gRPC hop. Each plane's
// cluster is stopped before the next starts.
func BenchmarkClusterPushPlane(b *testing.B) {
	for _, plane := range []string{"open", "tls"} {
		flags := []string{"--cluster.replication-factor=1"}
		if plane == "tls" {
			flags = append(flags, newClosedPlane(b).flags()...)
		}
		peers, paths := startBenchCluster(b, flags...)
		b.Run("plane="+plane, func(b *testing.B) { benchClusterPush(b, peers, paths, 40) })
		for _, p := range peers {
			p.stop(b)
		}
	}
}
