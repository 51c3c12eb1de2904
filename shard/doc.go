// Package shard decides which peer owns a group, and keeps that decision in
// step with the live members of the cluster. It knows nothing about
// metrics: a group is a uint64 key hash (store.GroupKey.Hash, xxhash64 of
// the encoded grouping key), and a peer is a Member with a stable ID and
// the addresses to reach it.
//
// # Placement
//
// A Placement is an immutable snapshot of the members. It ranks them for a
// key hash by rendezvous hashing, score = xxhash64(member ID ‖ key hash as
// 8 little-endian bytes), highest first, smaller ID first on a tie. The
// first is the owner, the next ones hold replicas. Rendezvous hashing needs
// no tokens and no coordination: every peer that sees the same members
// computes the same owners, a new member takes about 1/N of the keys from
// the others and nothing moves between the others, and a member that goes
// takes only its own keys with it. Because member IDs are stable (pod
// names), a restarted peer gets its groups back. The score is frozen by
// testdata/placement.golden.
//
// A Ring holds the current Placement behind an atomic pointer. A push
// looks up its owner with one pointer load and one hash per member, without
// locks or allocations; a membership change builds a new Placement and
// swaps it in.
//
// # Membership
//
// Membership runs hashicorp/memberlist (SWIM gossip over TCP and UDP) with
// its LAN defaults, except for the probe, gossip and suspicion timings,
// which are flags (Config.ProbeInterval and the rest) whose defaults detect
// a crashed peer in seconds. memberlist carries only membership and a small NodeMeta
// per peer: the gRPC address other peers forward pushes to and the HTTP
// address of its API. Group data never travels over gossip.
//
// The data flow of a change is:
//
//	memberlist (its goroutines, under its locks)
//	  └─ eventDelegate.NotifyJoin/Leave/Update: count, poke (never blocks)
//	       └─ worker goroutine: Members() → decode NodeMeta → NewPlacement
//	            └─ Ring.update: atomic swap, if the members differ
//	                 └─ readers: Ring.Owner / Ring.Placement().Owners
//
// The poke channel holds one pending poke and further pokes are dropped,
// which loses nothing: the worker always rebuilds from memberlist's whole
// member list, so one pending poke covers any number of events.
//
// At start, Membership binds the gossip address, resolves the seeds
// (--cluster.peer; a DNS name yields all its addresses, so one headless
// Service names every peer) and joins them. Every --cluster.rejoin-interval
// it joins again the seed addresses that are not live members, which heals
// a partition and picks up a seed that came up late. A cluster label
// (--cluster.label) makes memberlist drop the traffic of foreign clusters
// that share the network. On shutdown it broadcasts a leave, so the other
// peers drop it at once instead of after failed probes, then stops.
//
// With --cluster.gossip-key-file, memberlist encrypts every packet and
// stream with the keyring of that file and drops what is not encrypted
// with one of its keys (keyring.go); with --cluster.tls-config, gossip
// runs over mutual TLS connections on the gossip TCP port instead of
// plain TCP and UDP (tls_transport.go). Either keeps a node that cannot
// prove itself out of the member list, and so out of every placement.
//
// Settled reports when the member list has been stable for
// --cluster.settle-timeout after joining, for the readiness probe. With no
// --cluster.listen-address, Membership is a single peer that owns
// everything and runs no gossip.
package shard
