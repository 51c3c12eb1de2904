// Package procmetrics exposes the process_* families of client_golang's
// process collector (the same names, HELP texts, types and values) for
// the running process, at a fraction of the cost on Linux.
//
// Every scrape of a peer gathers its own families, so their cost is paid
// on every scrape, however few groups the peer holds. client_golang's
// collector reads /proc/stat for the boot time on each collection, parses
// /proc/self/limits with a regular expression and every counter of
// /proc/self/net/netstat: about 0.3 ms of CPU per scrape on the machine of
// BENCHMARKS.md, a third of what an empty peer's scrape costs. This one
// reads the boot time once, takes the two limits from getrlimit, keeps
// /proc/self/stat and /proc/self/net/netstat open between collections
// (two file descriptors, counted in process_open_fds), and reads one line
// pair of netstat into a reused buffer.
//
// Elsewhere than Linux, New returns client_golang's collector.
package procmetrics
