//go:build race

package ingest

// raceEnabled: the race detector's runtime allocates more than a normal
// build does, so allocation measurements mean nothing under it.
const raceEnabled = true
