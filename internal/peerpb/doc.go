// Package peerpb is the peer-to-peer gRPC protocol of a pushring cluster
// (service pushring.peer.v1.Peer, defined in peer.proto) and the options
// every peer server and client uses. It is a leaf: it imports nothing of
// ours, and package cluster alone converts between its messages and the
// store's and ingester's types.
//
// Push carries a forwarded push. Any peer accepts any push over HTTP; when
// its view of the cluster names another peer as the group's owner, it sends
// the request to the owner in one Push call with a deadline: method,
// escaped grouping path, content type and encoding, the body still
// compressed, and the Pushring-TTL header. The owner decodes and applies it
// exactly as it would a direct push, so limits and errors are the same, and
// answers with an HTTP status code, body and Retry-After, which the first
// peer relays to the pusher verbatim. A push that arrives over this RPC is
// applied by its receiver even when its own view names yet another owner,
// so a push makes at most one hop. Never an HTTP redirect: clients lose
// data on 3xx.
//
// HandOff moves groups when ownership changes. The old owner sends each
// group's complete state (encoded grouping key, families as MetricFamily
// wire bytes with their push times, including the push_time_seconds and
// push_failure_time_seconds gauges, the TTL deadline and the version), or a
// tombstone for a deleted group, and removes its copy once the new owner
// has stored it, unless a write came in meanwhile. The new owner keeps
// whichever copy has the higher version (last writer wins), so a hand-off
// racing with a fresh push, or an old copy arriving after a delete, changes
// nothing. Each group is accepted or rejected on its own.
//
// Groups returns a peer's whole shard for the cluster-wide merged views,
// Stats what it holds for the cluster status, and Wipe empties it for the
// cluster-wide admin wipe.
//
// MetricFamily travels as bytes rather than as a message type so that
// peer.proto does not import client_model's .proto; the ends marshal and
// unmarshal it with google.golang.org/protobuf.
package peerpb
