package loadtest

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// startProgress prints a status line for st to w every second until the
// returned stop function is called; stop waits for the printer to exit.
func startProgress(w io.Writer, label string, st *stats) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last uint64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				last = printProgress(w, label, st, last)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// printProgress writes one line and returns the success count it saw, so
// the next line can show the rate of the last second.
func printProgress(w io.Writer, label string, st *stats, last uint64) uint64 {
	ok := st.succeeded.Load()
	fmt.Fprintf(w, "%s %5.0fs  ok %d (%d/s)  failed %d  in-flight %d  skipped %d  p99 %s ms\n",
		label, time.Since(st.started).Seconds(), ok, ok-last, st.failed.Load(),
		st.inFlight.Load(), st.skipped.Load(), num(ms(st.latency.Quantile(.99))))
	return ok
}
