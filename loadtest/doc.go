// Package loadtest is a black-box load harness and completeness checker for
// anything that speaks the Pushgateway HTTP API: pushring (one peer or a
// cluster), the real Pushgateway, or any URL. It imports nothing of ours.
//
// # Pushers
//
// Each simulated edge node is what a real Go pusher is: its own
// prometheus.Registry (counters, gauges, one histogram; -series in total)
// pushed with client_golang's push package, grouped by instance, protobuf
// by default, PUT or POST, with a bounded client timeout and optionally the
// Pushring-TTL header. Every push moves all values on and sets the gauge
// loadtest_push_seq to the node's push number, so the check can tell the
// last push from an older one.
//
// # Modes
//
// fleet is open loop: one scheduler hands due nodes to a bounded worker
// pool; a node never has two pushes in flight, so a slow target shows up as
// skipped ticks and schedule lag, as with a time.Tick pusher. closed runs
// -concurrency pushers over the groups as fast as the target answers (a
// group's pushes never overlap). scrape pushes every group once, then times
// -scrapes scrapes and reads the spawned target's VmRSS.
//
// # Check
//
// After the run the peers (spawned ones, an HTTP-SD answer, or a URL list)
// are scraped in the text format. Every group with an acknowledged push
// must be exposed exactly once across all peers, with a seq between its
// last acknowledged and last sent push and all its metrics. Churned groups
// pushed with a TTL must be gone by their last push + TTL + -ttl-grace; the
// check polls until then. With -check-wait, a first scrape that finds a
// live group missing, duplicated, stale or incomplete is followed by one
// every second until none is, for at most that long; the report keeps the
// first scrape's findings beside the last one's and how long it waited, so
// a cluster that converges late shows as such, not as a plain pass. A
// stale or duplicated group names the peer that exposes it.
//
// # Targets
//
// -spawn builds ./cmd/pushring (or takes -gateway-bin) and starts peers on
// free loopback ports; -spawn-pushgateway starts the real Pushgateway the
// same way; both run one after the other and report side by side. Spawned
// processes are stopped when the run ends or is interrupted, and killed by
// the kernel if the harness dies (Pdeathsig); their logs are kept in
// -work-dir when one is named. -spawn N>1 starts a cluster:
// each peer gets its own gossip and gRPC port, a peer name and every other
// peer as a seed; a binary without the cluster flags fails with
// ErrNoClusterFlags.
//
// # Routing
//
// With -route node (the default) node i pushes to peer i mod peers, as a
// pusher configured with one peer's address does, and to a random peer in
// service while its own is out (killed). With -route random each push goes
// to a peer chosen at random among those in service, as through a
// Kubernetes Service. The choice is not seeded by -seed.
//
// # Killing a peer
//
// In fleet mode against a spawned cluster, -kill-peer-after SIGKILLs peer
// -kill-peer (the second by default) that long after the pushes start, and
// -restart-after starts it again that long after the kill: same peer name,
// flags and ports (new ports if its old ones are taken), so without a
// persistence file unless -target-flags names one. The harness plays the
// endpoints controller of a Service: the peer leaves service the moment it
// is killed, so no push is routed to it while it is down, and comes back
// once its new process answers /-/ready (a joining peer says 200 only after
// it has taken the newest state of its groups). Pushes already on their way
// to the peer when it is killed fail however the target is built; they are
// counted as killed_in_flight, apart from the failures the target chose.
// The check then scrapes every peer, the restarted one included.
//
// The report counts failed pushes by class, by status code, and by code
// how many answers carried Retry-After.
//
// # Push throughput
//
// cmd/pushbench measures what a gateway costs per push rather than what a
// fleet sees: NodeBodies gives the bodies one node pushes (text or
// protobuf; the same series, other values from one push to the next), and
// wrk, a C client that costs a fraction of a Go one, replays them PUT to
// 1,000 groups over 16 connections against pushring, the Pushgateway (1.5.1
// and 1.11.5, unchecked by default, its fastest mode) and a floor handler
// that only reads the body, one after the other, reporting pushes/s and
// each target's CPU time per push (make pushbench).
package loadtest
