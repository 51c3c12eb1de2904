package loadtest

import (
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stats collects the outcome of every push of one run. All methods are safe
// for concurrent use; the progress line reads it while pushers write.
type stats struct {
	started   time.Time
	attempted atomic.Uint64
	succeeded atomic.Uint64
	failed    atomic.Uint64
	inFlight  atomic.Int64
	skipped   atomic.Uint64 // fleet ticks missed because the node was still busy
	bytesSent atomic.Uint64
	latency   Histogram // successful pushes only
	lag       Histogram // fleet: actual start − scheduled start

	mu      sync.Mutex
	classes map[ErrorClass]uint64
	codes   map[string]uint64
	retry   map[string]uint64   // by status code: answers that carried Retry-After
	samples []string            // first few error messages, for the report
	sampled map[ErrorClass]bool // classes with a message in samples
}

// maxErrorSamples bounds how many error messages a report keeps, and
// maxSampleLen their length: a gateway's 400 body can list every series.
const (
	maxErrorSamples = 5
	maxSampleLen    = 300
)

// oneLine folds s onto one line and cuts it to at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func newStats() *stats {
	return &stats{started: time.Now(), classes: map[ErrorClass]uint64{}, codes: map[string]uint64{}, retry: map[string]uint64{}, sampled: map[ErrorClass]bool{}}
}

// begin marks a push as sent and returns its start time.
func (s *stats) begin() time.Time {
	s.attempted.Add(1)
	s.inFlight.Add(1)
	return time.Now()
}

// end records the outcome of a push that began at start.
func (s *stats) end(start time.Time, err error) {
	s.inFlight.Add(-1)
	if err == nil {
		s.latency.Record(time.Since(start))
		s.succeeded.Add(1)
		return
	}
	s.failed.Add(1)
	class, code := classify(err)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.classes[class]++
	if code != 0 {
		s.codes[codeKey(code)]++
	}
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter != "" {
		s.retry[codeKey(code)]++
	}
	// The first few errors, and the first of every class beyond them, so
	// that a rare class is not hidden behind a common one.
	if len(s.samples) < maxErrorSamples || !s.sampled[class] {
		s.samples = append(s.samples, oneLine(err.Error(), maxSampleLen))
	}
	s.sampled[class] = true
}

// errorCounts copies the per-class counts out.
func (s *stats) errorCounts() ErrorCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ErrorCounts{
		Total: s.failed.Load(), Timeout: s.classes[ClassTimeout], Connection: s.classes[ClassConnection],
		Status4xx: s.classes[Class4xx], Status5xx: s.classes[Class5xx], Canceled: s.classes[ClassCanceled],
		Killed: s.classes[ClassKilled], Other: s.classes[ClassOther],
		StatusCodes: maps.Clone(s.codes), RetryAfter: maps.Clone(s.retry), Samples: append([]string(nil), s.samples...),
	}
}
