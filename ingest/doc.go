// Package ingest turns Pushgateway push and delete requests into store
// writes.
//
// A request arrives from package api as a Request: the method, the escaped
// path after "<prefix>/metrics", the headers, the body and its Content-Type
// and Content-Encoding. The Ingester handles a push in these steps; every
// check of this package runs before the store sees the push, so a push it
// rejects changes no stored group (not even its failure time):
//
//  1. ParseGroupingPath decodes "/job/<JOB>{/<name>/<value>}" (or the
//     job@base64 form) into a store.GroupKey with the Pushgateway's rules
//     and 400 texts. The escaped path is split before it is decoded, so
//     "%2F" may appear inside a value.
//  2. The grouping labels are held to the label name and value length
//     limits and, with instance="" if absent, to the label pairs per series
//     limit: they end up on every series of the group.
//  3. The TTL is resolved: the Pushring-TTL header (TTLHeader) if the
//     request has one, else the first rule of --push.ttl-rules-file whose
//     job and label regexes match the key, else --push.ttl; 0 means the
//     group never expires. The store sets the group's deadline to the push
//     time plus the TTL on every successful push.
//  4. DecodeBody reads the body, decompressing gzip or snappy, as delimited
//     protobuf when the Content-Type says so and as text 0.0.4 otherwise,
//     never reading more than --push.max-body-bytes after decompression.
//  5. Sanitize forces the grouping labels onto every metric, adds
//     instance="" where there is no instance, and sorts label pairs, so a
//     group keeps one identity on whichever peer exposes it.
//  6. The sanitised push is held to the limits on series per push, label
//     pairs per series, and label name, label value and metric name
//     lengths. When several families break a limit the error is about the
//     first by name, so the answer does not depend on map order.
//  7. The push goes to the Store as a store.Push: PUT replaces the group,
//     POST the pushed families; DELETE removes the group. The store may
//     still refuse it with store.ErrLimit when the peer holds
//     --store.max-groups groups or --store.max-series series.
//
// Every failure is an error wrapping one of the package's sentinels (or
// store.ErrInconsistent or store.ErrLimit), which the api maps to HTTP
// status codes in one place: 400 for a malformed or over-limit push, 413
// for a body or push too large, 429 for a full peer, 503 (ErrOverloaded)
// for the api's admission refusals. For 4xx errors the error text is the
// response body. Texts the Pushgateway also produces are
// worded as it words them, so clients and scripts that match on them keep
// working; the limits' texts name the offender (cut to 64 bytes), the
// limit and the flag that raises it. Every rejection is counted in
// pushring_pushes_rejected_total under one of a fixed set of reasons.
//
// The TTL rules live behind an atomic pointer: pushes read them without a
// lock, and ReloadRules (SIGHUP, POST /-/reload) swaps in a newly read
// file, or keeps the old rules and reports why when the file is broken.
//
// The ingester knows nothing of other peers: it applies every request it
// is handed to the local store. Package cluster decides where a push goes
// (by Parse and Parsed.Key) and calls Apply on the peer that owns it.
package ingest
