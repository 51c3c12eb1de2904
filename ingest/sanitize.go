package ingest

import (
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/store"
)

// sanitize forces every grouping label onto every metric (adding it
// or overwriting the body's value), adds instance="" where a metric has no
// instance label, and sorts label pairs by name, as the Pushgateway does
// before storing a push.
//
// It runs on every push, so it walks each metric's sorted labels against the
// sorted grouping labels once and allocates the new label slices of the
// whole push in one block. An added pair is one message per label and call, shared by
// every metric that lacked the label; overwritten pairs share its name and
// value strings. Like all the push's proto messages and strings, they must
// not be written through.
//
// ls are the key's labels (key.Labels(), which the ingester computes once
// per push). The pushed families keep pointers into ls, which must not be
// modified afterwards.
func sanitize(fams map[string]*dto.MetricFamily, ls []store.Label) {
	ts := targetsOf(ls)
	slots := 0
	for _, mf := range fams {
		slots += prepareFamily(mf, ts)
	}
	if slots == 0 {
		return
	}
	a := arena{slots: make([]*dto.LabelPair, 0, slots)}
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			if n := overwrite(m.Label, ts); n > 0 {
				m.Label = a.merge(m.Label, ts, n)
			}
		}
	}
}

// target is a label every metric of the push ends up with.
type target struct {
	name, value *string
	force       bool           // a grouping label; false for the instance="" default
	pair        *dto.LabelPair // name and value, added where a metric lacks the label
}

// targetsOf returns the grouping labels ls (sorted by name), plus the
// instance="" default when there is no instance, sorted by name.
func targetsOf(ls []store.Label) []target {
	ts := make([]target, 0, len(ls)+1)
	hasInstance := false
	for i := range ls {
		ts = append(ts, target{name: &ls[i].Name, value: &ls[i].Value, force: true})
		hasInstance = hasInstance || ls[i].Name == instanceLabel
	}
	if !hasInstance {
		name, value := instanceLabel, ""
		ts = append(ts, target{name: &name, value: &value})
		slices.SortFunc(ts, func(a, b target) int { return strings.Compare(*a.name, *b.name) })
	}
	pairs := make([]dto.LabelPair, len(ts))
	for i := range ts {
		pairs[i].Name, pairs[i].Value = ts[i].name, ts[i].value
		ts[i].pair = &pairs[i]
	}
	return ts
}

// prepareFamily sorts the labels of every metric of mf and overwrites the
// forced targets, and returns the slots the metrics that lack a target
// take with the targets added: a first pass, so that the second can carve
// every new label slice out of one allocation.
func prepareFamily(mf *dto.MetricFamily, ts []target) (slots int) {
	for _, m := range mf.GetMetric() {
		sortPairs(m.Label)
		if n := overwrite(m.Label, ts); n > 0 {
			slots += len(m.Label) + n
		}
	}
	return slots
}

func sortPairs(ls []*dto.LabelPair) {
	cmp := func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) }
	if !slices.IsSortedFunc(ls, cmp) {
		slices.SortStableFunc(ls, cmp)
	}
}

// overwrite sets every forced target present in ls (sorted) to its value,
// duplicates included, and returns how many targets ls lacks.
func overwrite(ls []*dto.LabelPair, ts []target) (missing int) {
	i := 0
	for _, t := range ts {
		for i < len(ls) && ls[i].GetName() < *t.name {
			i++
		}
		found := false
		for ; i < len(ls) && ls[i].GetName() == *t.name; i++ {
			found = true
			if t.force {
				ls[i].Value = t.value
			}
		}
		if !found {
			missing++
		}
	}
	return missing
}

// arena hands out the label slices of one push.
type arena struct {
	slots []*dto.LabelPair
}

// merge returns ls (sorted) with the missing targets inserted in order, in
// a slice with no spare capacity so no later append can reach a neighbour.
func (a *arena) merge(ls []*dto.LabelPair, ts []target, missing int) []*dto.LabelPair {
	start := len(a.slots)
	i := 0
	for _, t := range ts {
		for i < len(ls) && ls[i].GetName() < *t.name {
			a.slots = append(a.slots, ls[i])
			i++
		}
		if i < len(ls) && ls[i].GetName() == *t.name {
			continue
		}
		a.slots = append(a.slots, t.pair)
	}
	a.slots = append(a.slots, ls[i:]...)
	end := start + len(ls) + missing
	return a.slots[start:end:end]
}
