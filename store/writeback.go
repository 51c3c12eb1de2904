package store

import "os"

// syncEvery is how many bytes a persistence write lets through before it
// syncs them on the side. A virtual disk's flush writes out everything
// written since the last one, so a file synced only at the end (hundreds of
// MB for 200k groups) waits there for all of it: about 0.25 s of a 0.75 s
// write of 200k groups on the machine of BENCHMARKS.md. Synced on a
// goroutine of its own every syncEvery bytes, the file is flushed while the
// next groups are encoded, and the last sync waits for the tail only. A
// hint to start write-out (sync_file_range) is not enough there: it does
// not flush the disk's cache.
const syncEvery = 16 << 20

// syncingFile is the file under a persistence write's buffer. It counts
// what is written and, past every syncEvery bytes, syncs the file on a
// goroutine, one at a time: a Write never waits for a sync. wait ends the
// goroutine and returns the first error any of these syncs had: a failed
// sync is a failed write, even if a later one succeeds (Linux may forget a
// write-back error once it has been reported).
type syncingFile struct {
	f       *os.File
	written int64 // bytes written
	synced  int64 // bytes written when the last sync started
	running chan error
	err     error // first sync error
}

func (s *syncingFile) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.written += int64(n)
	if s.written-s.synced >= syncEvery && s.idle() {
		s.synced = s.written
		s.running = make(chan error, 1)
		go func(done chan<- error) { done <- s.f.Sync() }(s.running)
	}
	return n, err
}

// idle reports whether no sync is running, collecting the one that ended.
func (s *syncingFile) idle() bool {
	if s.running == nil {
		return true
	}
	select {
	case err := <-s.running:
		s.collect(err)
		return true
	default:
		return false
	}
}

// wait waits for the running sync, if any, and returns the first error of
// all of them. The file may be closed after it returns.
func (s *syncingFile) wait() error {
	if s.running != nil {
		s.collect(<-s.running)
	}
	return s.err
}

func (s *syncingFile) collect(err error) {
	s.running = nil
	if err != nil && s.err == nil {
		s.err = err
	}
}
