package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// sep separates names and values in an encoded grouping key. It is
// model.SeparatorByte, the byte the Pushgateway uses in its persistence keys,
// and it can never occur in valid UTF-8. It is a one-byte string: string('\xff')
// would be the two-byte UTF-8 encoding of U+00FF.
const sep = "\xff"

// Label is one name/value pair of a grouping key.
type Label struct {
	Name, Value string
}

// GroupKey identifies a group: the job plus the grouping labels of a push URL,
// after decoding. Its encoding is the labels sorted by name, written as
// name 0xFF value 0xFF name 0xFF value (no trailing separator): the same bytes
// the Pushgateway uses as the key of its persistence file. The encoding and its
// hash place groups on peers, so both are frozen by golden tests.
//
// The zero GroupKey is invalid. GroupKey is comparable and cheap to copy.
type GroupKey struct {
	enc  string
	hash uint64
}

// ErrInvalidKey is returned by ParseGroupKey for bytes that are not an encoded key.
var ErrInvalidKey = errors.New("invalid grouping key")

// NewGroupKey builds the key of a group from its grouping labels, which must
// include "job".
func NewGroupKey(labels map[string]string) GroupKey {
	ls := make([]Label, 0, len(labels))
	for n, v := range labels {
		ls = append(ls, Label{Name: n, Value: v})
	}
	return keyFromSorted(sortLabels(ls))
}

// KeyFromLabels builds a key from labels in any order. Later duplicates of a
// name win, as they do in a push URL. ls is not modified.
//
// It runs for every push, so it sorts a copy in place rather than going
// through a map: a stable sort keeps the duplicates of a name in their
// order, and the last of each run is the one kept.
func KeyFromLabels(ls []Label) GroupKey {
	var buf [8]Label // a push URL rarely has more labels
	sorted := append(buf[:0], ls...)
	slices.SortStableFunc(sorted, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	out := sorted[:0]
	for i, l := range sorted {
		if i+1 < len(sorted) && sorted[i+1].Name == l.Name {
			continue // a later one of the same name wins
		}
		out = append(out, l)
	}
	return keyFromSorted(out)
}

func sortLabels(ls []Label) []Label {
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

func keyFromSorted(ls []Label) GroupKey {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value) + 2*len(sep)
	}
	var b strings.Builder
	b.Grow(n)
	for i, l := range ls {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(l.Name)
		b.WriteString(sep)
		b.WriteString(l.Value)
	}
	enc := b.String()
	return GroupKey{enc: enc, hash: xxhash.Sum64String(enc)}
}

// ParseGroupKey decodes the bytes String returned. It accepts the keys of a
// Pushgateway persistence file.
func ParseGroupKey(enc string) (GroupKey, error) {
	if enc == "" {
		return GroupKey{}, fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	parts := strings.Split(enc, sep)
	if len(parts)%2 != 0 {
		return GroupKey{}, fmt.Errorf("%w: odd number of fields in %q", ErrInvalidKey, enc)
	}
	ls := make([]Label, 0, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		if i > 0 && parts[i] <= parts[i-2] {
			return GroupKey{}, fmt.Errorf("%w: label names not sorted and unique in %q", ErrInvalidKey, enc)
		}
		ls = append(ls, Label{Name: parts[i], Value: parts[i+1]})
	}
	return keyFromSorted(ls), nil
}

// String returns the encoded key.
func (k GroupKey) String() string { return k.enc }

// Hash returns xxhash64 of the encoded key. It decides the owner peer of the group.
func (k GroupKey) Hash() uint64 { return k.hash }

// IsZero reports whether k is the invalid zero key.
func (k GroupKey) IsZero() bool { return k.enc == "" }

// Labels returns the grouping labels sorted by name. The slice is new.
func (k GroupKey) Labels() []Label {
	if k.enc == "" {
		return nil
	}
	ls := make([]Label, 0, (strings.Count(k.enc, sep)+1)/2)
	for name, value := range k.pairs {
		ls = append(ls, Label{Name: name, Value: value})
	}
	return ls
}

// pairs yields the grouping labels sorted by name.
func (k GroupKey) pairs(yield func(name, value string) bool) {
	for rest := k.enc; rest != ""; {
		name, after, ok := strings.Cut(rest, sep)
		if !ok {
			return
		}
		var value string
		value, rest, _ = strings.Cut(after, sep)
		if !yield(name, value) {
			return
		}
	}
}

// Map returns the grouping labels as a new map.
func (k GroupKey) Map() map[string]string {
	ls := k.Labels()
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// Get returns the value of grouping label name and whether it is present.
func (k GroupKey) Get(name string) (string, bool) {
	for n, v := range k.pairs {
		if n == name {
			return v, true
		}
	}
	return "", false
}

// Less orders keys by their encoding; scrape output and the JSON API list
// groups in this order.
func (k GroupKey) Less(o GroupKey) bool { return k.enc < o.enc }
