package loadtest

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// maxErrorBody caps how much of a rejected push's answer is kept for the
// error message; the rest is drained so the connection can be reused.
const maxErrorBody = 512

// StatusError is a push answered with a status other than 200 or 202, the two
// codes client_golang's push package accepts.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("push answered %d: %s", e.Code, e.Body)
}

// doer is the push.HTTPDoer every pusher uses. It counts request bytes and
// turns an unwanted status into a *StatusError: client_golang returns a
// Doer's error unchanged, while its own status error is only a string.
type doer struct {
	client *http.Client
	sent   *atomic.Uint64
}

// Do sends req; the caller owns the response only when err is nil.
func (d doer) Do(req *http.Request) (*http.Response, error) {
	if req.ContentLength > 0 {
		d.sent.Add(uint64(req.ContentLength))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, resp.Body) // drain so keep-alive survives; a failure only costs the connection
	return nil, &StatusError{Code: resp.StatusCode, Body: string(body)}
}
