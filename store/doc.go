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
// writes), and hashes every series (its text line up to the value).
// Counter, gauge and untyped families of the usual shape do all of that in
// one walk over each metric's labels (render_simple.go); the rest take the
// general path, which the fast one must match byte for byte. No dto
// structs are kept: a family value is its name, type, HELP, time and those
// bytes (front-coded, fronttext.go) and hashes: about 126 bytes of heap
// per series against the Pushgateway's ~2 KB (BenchmarkHeapPerSeries).
//
// The protobuf `metric` fields are not encoded at push time: most stores
// are scraped as text only. The first protobuf scrape of a family value
// renders them from its text lines and keeps them on the value while the
// store's render cache (Config.MaxRenderCacheBytes) has room
// (protobuf.go, render_cache.go). That needs the text to carry every field exactly, which a
// push checks (textExact): a family with a metric it does not (unset
// values, -0, NaN payloads such as stale markers, counts above 2^53,
// exemplars, float or native histograms, unknown fields, ...) keeps
// protobuf bytes encoded at push time instead. Created timestamps, which
// client_golang's protobuf pushes carry on every counter, summary and
// histogram, are kept beside the text instead and put back by the
// renderers (created.go).
//
// Then, under the one store mutex, Apply checks the push against the rest
// of the store through three indexes, all O(size of the push): a multiset
// from series hash to owning group (seriesindex.go: one word per series,
// 40 bits of the hash mixed with a secret seed and a group id, in
// pointer-free tables; a hit in another group is confirmed by comparing
// label sets, so collisions cost a look but are never taken for
// duplicates), a per-name entry
// with the type every group's family of that name has, and the gateway's own
// family names and types (Config.Reserved). Suffix collisions
// (histogram/summary N against N_count, N_sum, N_bucket) are looked up in
// the same name index. A push that passes is committed with index updates
// only; one that fails changes nothing but the group's failure time, and
// even that only when the failure gauges would not clash with another
// group, so no push can make the store inconsistent (the Pushgateway can
// end up failing every scrape).
//
// # Limits
//
// Config.MaxGroups, Config.MaxSeries and Config.MaxBytes bound the peer
// (flags --store.max-groups, --store.max-series and --store.max-bytes, the
// last counting the bytes of the rendered sample lines, so long label
// values are bounded too). They are checked under the
// lock before the consistency check, against the net growth of the write:
// a new group counts one, and the series it adds minus those it replaces or
// drops must fit, so a push that does not grow the store succeeds at the
// limit. A write that does not fit is refused whole with ErrLimit (429) and
// changes nothing, not even a failure time: no refused push can create a
// group, so a flood of distinct grouping keys leaves the stored groups as
// they were. Failure times of other rejections create failure-only groups
// (nothing but the two time gauges, no successful push), which count
// against Config.MaxFailureGroups instead of MaxGroups, so refusals cannot
// lock valid pushers out; a successful push makes one an ordinary group.
//
// # Expiry
//
// A successful push sets its group's deadline to its time plus Push.TTL
// (TTL 0: no deadline); failed pushes leave it alone, except that a group a
// failed push creates gets that push's deadline. Groups with a deadline sit
// in a min-heap by deadline, each knowing its heap position, so setting,
// moving or dropping a deadline is O(log n) and the heap holds exactly one
// entry per such group. Expire pops the due groups, O(log n) each and
// nothing for the others, and removes them as Delete does, in batches under
// the lock. RunExpiry, run by the caller on its own goroutine, sleeps until
// the earliest deadline (rounded up to 100 ms so that close deadlines go in
// one pass) and is woken early when a write sets an earlier one. Deadlines
// travel with Snapshot and Restore and are kept in the persistence file; a
// restored group already past its deadline is counted as expired, not
// inserted.
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
// family per name. Protobuf fields (of families that did not keep them from
// the push) and OpenMetrics bodies are rendered on the first scrape of a
// family value in that format and kept on it while the render cache has
// room; past that bound a scrape renders the rest for itself, into a
// buffer it reuses, and keeps nothing, so what a scrape adds to the heap
// does not grow with the store.
//
// # Snapshots and persistence
//
// Snapshot, Group and Restore move whole groups in and out as dto families
// (decoded from the protobuf bytes, rendered from the text if no scrape
// cached them; a snapshot does not cache them, or every persistence write
// would pin them for every family) for the JSON API, persistence and
// hand-off. Range hands out the same copies one group at a time, holding
// the lock only to list the keys and to copy each group's references, so a
// read of the whole peer (the JSON API, the status page) costs one group's
// memory, not the store's. Restore checks every group like a push (consistency and
// limits), without the push-time side effects. Changed signals every change,
// expiries included, so that persistence can write the file in the
// Pushgateway's format (persist.go) with pushring's version and deadline as
// extra fields the Pushgateway ignores.
package store
