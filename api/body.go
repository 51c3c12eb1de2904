package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/pushring/pushring/ingest"
)

// Push body flags and defaults (shared/DESIGN.md decision 16).
const (
	flagBodyTimeout  = "push.body-timeout"
	flagMinBodyRate  = "push.min-body-rate"
	flagMemoryBudget = "push.memory-budget-bytes"

	// DefaultBodyTimeout is the default of --push.body-timeout: the
	// default 16 MiB body arrives in well under that on any link a pusher
	// should use, and it stays below --web.read-timeout's minute.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultMinBodyRate is the default of --push.min-body-rate, in bytes
	// per second once bodyGrace has passed: a slow edge link sends tens of
	// KiB/s, a stalled or trickling client less than this.
	DefaultMinBodyRate = 1024
	// bodyGrace is how long a body may take before the minimum rate
	// applies (at most --push.body-timeout): a connection's first bytes
	// may wait on a slow start or a retransmission.
	bodyGrace = 5 * time.Second
)

// bodyReader reads push bodies before they take an admission slot: each
// under its own deadline and minimum transfer rate, and charged to the
// memory budget while its bytes arrive. A stalled body holds its own
// connection and goroutine, and no slot and no budget it has not filled.
type bodyReader struct {
	timeout time.Duration
	grace   time.Duration // bodyGrace, at most timeout; tests shorten it
	minRate int64
	maxBody int64
	budget  *budget
	reading atomic.Int64 // bodies being read now
}

// read reads r's body whole. The returned charge holds the budget taken for
// the body and its decoding until the caller releases it. Errors are answers: 503 over the budget, 408
// past the deadline or below the rate.
func (br *bodyReader) read(w http.ResponseWriter, r *http.Request) (*ingest.Body, *charge, error) {
	br.reading.Add(1)
	defer br.reading.Add(-1)
	st := &bodyRead{charge: charge{b: br.budget}}
	c, p := &st.charge, &st.paced
	p.start(r.Body, w, br.timeout, br.grace, br.minRate)
	body, err := ingest.ReadBody(p, r.Header.Get("Content-Encoding"), br.maxBody, r.ContentLength, c.take)
	if err == nil {
		p.done()
		// Decoding turns the bytes into families that take more room
		// than the text; charge that before admission lets it happen.
		err = c.take(ingest.DecodeCost(body, r.Header.Get("Content-Type")))
	}
	if err != nil {
		c.release()
		return nil, nil, br.answer(w, err)
	}
	return body, c, nil
}

// bodyRead is the state of one body being read, in one allocation: its
// pacing, and its charge, which outlives the read until the push is done.
type bodyRead struct {
	paced  pacedReader
	charge charge
}

// answer turns a failed read into the error the pusher gets.
func (br *bodyReader) answer(w http.ResponseWriter, err error) error {
	var be *budgetError
	switch {
	case errors.As(err, &be):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		return &bodyTimeoutError{timeout: br.timeout, grace: br.grace, minRate: br.minRate}
	}
	return &statusError{code: http.StatusBadRequest, text: err.Error()}
}

// bodyTimeoutError is a body that did not arrive in time. It is a 408;
// the client that stalled is unlikely to read it, but a slow one learns
// which flags bound it.
type bodyTimeoutError struct {
	timeout, grace time.Duration
	minRate        int64
}

func (e *bodyTimeoutError) Error() string {
	msg := fmt.Sprintf("push body not received in time: it must arrive within --%s=%s", flagBodyTimeout, e.timeout)
	if e.minRate > 0 {
		msg += fmt.Sprintf(" and, after the first %s, at --%s=%d bytes/s or faster", e.grace, flagMinBodyRate, e.minRate)
	}
	return msg
}

// pacedReader sets the connection's read deadline before every read so a
// body must arrive within timeout, and at minRate bytes per second once
// bodyGrace has passed. A client that keeps up never meets the deadline;
// one that stalls meets it within the grace plus what it has already sent
// at the minimum rate.
type pacedReader struct {
	r       io.Reader
	rc      http.ResponseController
	begin   time.Time
	last    time.Time // begin + timeout
	grace   time.Duration
	minRate int64
	n       int64
}

// start readies p to read r, the body of the request w answers, from now.
func (p *pacedReader) start(r io.Reader, w http.ResponseWriter, timeout, grace time.Duration, minRate int64) {
	now := time.Now()
	*p = pacedReader{r: r, rc: *http.NewResponseController(w), begin: now, last: now.Add(timeout), grace: grace, minRate: minRate}
}

// Read reads from the body under the deadline the bytes read so far earn.
func (p *pacedReader) Read(b []byte) (int, error) {
	deadline := p.last
	if p.minRate > 0 {
		earned := p.begin.Add(p.grace + time.Duration(float64(p.n)/float64(p.minRate)*float64(time.Second)))
		if earned.Before(deadline) {
			deadline = earned
		}
	}
	// A connection that cannot take deadlines keeps the server's
	// --web.read-timeout, which still bounds it.
	_ = p.rc.SetReadDeadline(deadline)
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}

// done lifts the body's deadline once it is read: the server reads the
// connection in the background while the push is handled, and a deadline
// passing then would cancel the push. The server sets its own deadlines
// again for the next request.
func (p *pacedReader) done() { _ = p.rc.SetReadDeadline(time.Time{}) }
