package ingest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A tagged error reads exactly as its cause, so the 400 body carries no
// prefix, and both the sentinel and the cause can be matched.
func TestRequestError(t *testing.T) {
	cause := errors.New("gzip: invalid header")
	err := asBadRequest(cause)
	require.EqualError(t, err, "gzip: invalid header")
	require.ErrorIs(t, err, ErrBadRequest)
	require.ErrorIs(t, err, cause)
	tooLarge := &requestError{kind: ErrTooLarge, cause: cause}
	require.Same(t, tooLarge, asBadRequest(tooLarge).(*requestError))
}
