// Package ingest turns Pushgateway push and delete requests into store
// writes.
//
// A request arrives from package api as a Request: the method, the escaped
// path after "<prefix>/metrics", the body and its Content-Type and
// Content-Encoding. The Ingester handles it in four steps:
//
//  1. ParseGroupingPath decodes "/job/<JOB>{/<name>/<value>}" (or the
//     job@base64 form) into a store.GroupKey with the Pushgateway's rules
//     and 400 texts. The escaped path is split before it is decoded, so
//     "%2F" may appear inside a value.
//  2. DecodeBody reads the body, decompressing gzip or snappy, as delimited
//     protobuf when the Content-Type says so and as text 0.0.4 otherwise,
//     never reading more than --push.max-body-bytes after decompression.
//  3. Sanitize forces the grouping labels onto every metric, adds
//     instance="" where there is no instance, and sorts label pairs, so a
//     group keeps one identity on whichever peer exposes it.
//  4. The push goes to the Store as a store.Push: PUT replaces the group,
//     POST the pushed families; DELETE removes the group.
//
// Every failure is an error wrapping one of the package's sentinels (or
// store.ErrInconsistent), and StatusOf is the one place that maps errors to
// HTTP status codes. For 4xx errors the error text is the response body,
// worded as the Pushgateway words it, so clients and scripts that match on
// it keep working.
//
// Routing a push to the peer that owns its group is not done here yet; the
// Store seen by the Ingester is the local one.
package ingest
