package store

import "errors"

// rejection is the error of a push or group the store refused, with the
// reason RejectReason reports. The store counts no refusal itself: the
// caller that answers the pusher (or the peer handing a group over) counts
// each refusal once, under this reason.
type rejection struct {
	reason string
	err    error
}

func (r *rejection) Error() string { return r.err.Error() }

// Unwrap keeps ErrInconsistent and ErrLimit matchable with errors.Is.
func (r *rejection) Unwrap() error { return r.err }

func rejected(reason string, err error) error { return &rejection{reason: reason, err: err} }

// RejectReason returns why the store refused a push or a group, for a
// counter's reason label: "timestamp" (a sample has a timestamp),
// "invalid" (the push is broken on its own), "inconsistent" (it conflicts
// with stored groups or the gateway's own metrics), "max_groups" or
// "max_series" (--store.max-groups, --store.max-series). It returns "" for
// an error that is not a refusal by the store.
func RejectReason(err error) string {
	var r *rejection
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}
