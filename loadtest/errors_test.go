package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// timeoutErr is a net.Error that timed out, like http.Client's.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		class ErrorClass
		code  int
	}{
		{"429", &StatusError{Code: 429}, Class4xx, 429},
		{"wrapped 503", fmt.Errorf("push: %w", &StatusError{Code: 503}), Class5xx, 503},
		{"301 is other", &StatusError{Code: 301}, ClassOther, 301},
		{"client timeout", &url.Error{Op: "Put", URL: "http://x", Err: timeoutErr{}}, ClassTimeout, 0},
		{"deadline", fmt.Errorf("push: %w", context.DeadlineExceeded), ClassTimeout, 0},
		{"refused", &url.Error{Op: "Put", URL: "http://x", Err: syscall.ECONNREFUSED}, ClassConnection, 0},
		{"canceled", &url.Error{Op: "Put", URL: "http://x", Err: context.Canceled}, ClassCanceled, 0},
		{"in flight to a killed peer", &KilledError{Peer: "127.0.0.1:1", Err: &url.Error{Op: "Put", URL: "http://x", Err: syscall.ECONNRESET}}, ClassKilled, 0},
		{"gather error", errors.New("pushed metric x already contains a job label"), ClassOther, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class, code := classify(tt.err)
			require.Equal(t, tt.class, class)
			require.Equal(t, tt.code, code)
		})
	}
}
