// Package store holds the groups of one peer: their families, the indexes
// that keep them consistent, their pre-rendered exposition, and their
// persistence.
//
// # Writes
//
// A push arrives as a Push (ingest has already parsed and sanitised it).
// Apply first does everything that depends only on the push, without the
// lock: it rejects timestamps, validates every family and metric the way
// client_golang's Gatherers would (value type, label names and values,
// duplicates within the push), sorts the metrics in client_golang's order,
// renders the text 0.0.4 sample lines once (byte for byte what expfmt
// writes), encodes the metrics as protobuf `metric` fields, and hashes
// every series. No dto structs are
// kept: a family value is its name, type, HELP, time and those bytes and
// hashes: under 400 bytes of heap per series against the Pushgateway's
// ~2 KB (BenchmarkHeapPerSeries).
//
// Then, under the one store mutex, Apply checks the push against the rest
// of the store through three indexes, all O(size of the push): a multiset
// from series hash to owning group (a hit in another group is confirmed by
// comparing label sets, so hash collisions are harmless), a per-name entry
// with the type every group's family of that name has, and the gateway's own
// family names and types (Config.Reserved). Suffix collisions
// (histogram/summary N against N_count, N_sum, N_bucket) are looked up in
// the same name index. A push that passes is committed with map updates
// only; one that fails changes nothing but the group's failure time, and
// even that only when the failure gauges would not clash with another
// group, so no push can make the store inconsistent (the Pushgateway can
// end up failing every scrape, spec §4.5).
//
// # Scrapes
//
// WriteExposition copies out, under the lock, pointers to the immutable
// family values: family names in byte order (a cached list, rebuilt only
// when a name appears or disappears) and per name the member groups in key
// order (a per-name list of slots, re-sorted only when membership changed).
// Outside the lock it writes one HELP/TYPE header per name, taken from the
// gateway's own family of that name if there is one, else from the first
// group with metrics, followed by every group's pre-rendered bytes. The
// protobuf format writes the header as a MetricFamily message without
// metrics and appends every group's encoded `metric` fields: protobuf merges
// repeated fields of concatenated messages, so the result is one merged
// family per name. OpenMetrics bodies are rendered on the first OpenMetrics
// scrape of a family value and cached on it. A scrape never re-encodes a
// group that did not change.
//
// # Snapshots and persistence
//
// Snapshot, Group and Restore move whole groups in and out as dto families
// (decoded from the stored protobuf bytes) for the JSON API, persistence and
// hand-off. Restore checks every group like a push, without the push-time
// side effects. Changed signals every change so that persistence can write
// the file in the Pushgateway's format (persist.go).
package store
