package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 200},
		{"not found", fmt.Errorf("route: %w", ErrNotFound), 404},
		{"bad request", badRequest("job name is required"), 400},
		{"too large", fmt.Errorf("x: %w", ErrTooLarge), 413},
		{"method", ErrMethodNotAllowed, 405},
		{"inconsistent", fmt.Errorf("%w: duplicate", store.ErrInconsistent), 400},
		{"store limit", fmt.Errorf("%w: raise --store.max-groups", store.ErrLimit), 429},
		{"store limit wrapped", fmt.Errorf("apply: %w", fmt.Errorf("%w: x", store.ErrLimit)), 429},
		{"overloaded", fmt.Errorf("admission: %w", ErrOverloaded), 503},
		{"limit of a push", overLimit(reasonLabelsPerSeries, ErrBadRequest, flagMaxLabelsPerSeries, 1, "x"), 400},
		{"limit of a push, too large", overLimit(reasonSeriesPerPush, ErrTooLarge, flagMaxSeries, 1, "x"), 413},
		{"ttl header", badRequest("invalid Pushring-TTL header"), 400},
		{"cancelled", context.Canceled, 500},
		{"other", errors.New("boom"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, StatusOf(tt.err))
		})
	}
}

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
