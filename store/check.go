package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// ErrInconsistent wraps every rejection of a push by the consistency check.
// Its text is the Pushgateway's prefix; the detail follows after ": ".
var ErrInconsistent = errors.New("pushed metrics are invalid or inconsistent with existing metrics")

// errTimestamps is the Pushgateway's detail for samples with a timestamp.
var errTimestamps = errors.New("pushed metrics must not have timestamps")

// maxReported bounds how many problems one rejection lists, so that a push
// of 100k broken series does not produce a 10 MB error body.
const maxReported = 10

// Reasons RejectReason returns for ErrInconsistent.
const (
	reasonTimestamp    = "timestamp"    // a sample carries a timestamp
	reasonInvalid      = "invalid"      // the push is broken on its own
	reasonInconsistent = "inconsistent" // the push conflicts with stored groups
)

// problems collects the errors of one write, in client_golang's MultiError
// shape, up to maxReported.
type problems struct {
	errs    []error
	invalid bool // at least one error does not depend on the store
}

func (p *problems) add(err error) {
	if len(p.errs) < maxReported {
		p.errs = append(p.errs, err)
	}
}

func (p *problems) full() bool { return len(p.errs) >= maxReported }

func (p *problems) reason() string {
	if p.invalid {
		return reasonInvalid
	}
	return reasonInconsistent
}

// err returns the rejection: ErrInconsistent followed by the single problem,
// or by "N error(s) occurred:" and one "* " line per problem.
func (p *problems) err() error {
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: %s", ErrInconsistent, p.errs[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d error(s) occurred:", len(p.errs))
	for _, e := range p.errs {
		b.WriteString("\n* ")
		b.WriteString(e.Error())
	}
	return fmt.Errorf("%w: %s", ErrInconsistent, b.String())
}

// hasTimestamps reports whether any sample of fams carries a timestamp. The
// Pushgateway checks this before anything else, even before dropping a
// pushed push_time_seconds.
func hasTimestamps(fams map[string]*dto.MetricFamily) bool {
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				return true
			}
		}
	}
	return false
}

// checkFamilyHeader checks what the Pushgateway never checks because the
// text parser does it: protobuf pushes bypass it, and a bad name or type
// would break every later scrape.
func checkFamilyHeader(mf *dto.MetricFamily) error {
	name := mf.GetName()
	switch {
	case !model.UTF8Validation.IsValidMetricName(name):
		return fmt.Errorf("metric family name %q is not a valid metric name", name)
	case isOwnName(name):
		return fmt.Errorf("metric family name %q is reserved for the gateway's own metrics (prefix %q)", name, ownPrefix)
	case !utf8.ValidString(mf.GetHelp()):
		// Prometheus refuses a whole scrape over it ("help text is not a
		// valid utf8 string"), which would take the peer off its targets.
		return fmt.Errorf("metric family %q has a HELP text that is not valid UTF-8: %q", name, mf.GetHelp())
	}
	if _, ok := dto.MetricType_name[int32(mf.GetType())]; !ok {
		return fmt.Errorf("metric family %q has unknown type %d", name, mf.GetType())
	}
	return nil
}

// checkMetric checks one metric of a family on its own, with
// client_golang's checks and texts, plus an explicit le on histograms. The
// label pairs must be sorted by name.
func checkMetric(name string, typ dto.MetricType, m *dto.Metric) error {
	if !hasValueOf(typ, m) {
		return fmt.Errorf("collected metric %q { %s} is not a %s", name, m, typ)
	}
	for i, lp := range m.Label {
		ln := lp.GetName()
		switch {
		case i > 0 && ln == m.Label[i-1].GetName():
			return fmt.Errorf("collected metric %q { %s} has two or more labels with the same name: %s", name, m, ln)
		case !model.UTF8Validation.IsValidLabelName(ln) || strings.HasPrefix(ln, model.ReservedLabelPrefix),
			strings.Contains(ln, ":"): // no escaping scheme removes it; see docs/compat.md
			return fmt.Errorf("collected metric %q { %s} has a label with an invalid name: %s", name, m, ln)
		case typ == dto.MetricType_SUMMARY && ln == model.QuantileLabel,
			isHistogram(typ) && ln == model.BucketLabel:
			return fmt.Errorf("collected metric %q { %s} must not have an explicit %q label", name, m, ln)
		case !utf8.ValidString(lp.GetValue()):
			return fmt.Errorf("collected metric %q { %s} has a label named %q whose value is not utf8: %#v", name, m, ln, lp.GetValue())
		}
	}
	return checkExemplars(name, m)
}

// checkExemplars checks the label pairs of m's exemplars, which the
// OpenMetrics and protobuf scrapes carry: a name Prometheus would not
// accept or a value that is not UTF-8 would fail the whole scrape.
func checkExemplars(name string, m *dto.Metric) error {
	if c := m.GetCounter(); c != nil {
		if err := checkExemplar(name, c.GetExemplar()); err != nil {
			return err
		}
	}
	if h := m.GetHistogram(); h != nil {
		for _, ex := range h.GetExemplars() {
			if err := checkExemplar(name, ex); err != nil {
				return err
			}
		}
		for _, b := range h.GetBucket() {
			if err := checkExemplar(name, b.GetExemplar()); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkExemplar is checkExemplars for one exemplar (nil: none).
func checkExemplar(name string, ex *dto.Exemplar) error {
	for _, lp := range ex.GetLabel() {
		switch {
		case !legacyLabelName(lp.GetName()):
			return fmt.Errorf("collected metric %q has an exemplar with an invalid label name: %q", name, lp.GetName())
		case !utf8.ValidString(lp.GetValue()):
			return fmt.Errorf("collected metric %q has an exemplar label named %q whose value is not utf8: %q", name, lp.GetName(), lp.GetValue())
		}
	}
	return nil
}

// hasValueOf reports whether m carries the value a family of type typ
// renders.
func hasValueOf(typ dto.MetricType, m *dto.Metric) bool {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.Counter != nil
	case dto.MetricType_GAUGE:
		return m.Gauge != nil
	case dto.MetricType_SUMMARY:
		return m.Summary != nil
	case dto.MetricType_UNTYPED:
		return m.Untyped != nil
	default: // HISTOGRAM, GAUGE_HISTOGRAM
		return m.Histogram != nil
	}
}

func isHistogram(typ dto.MetricType) bool {
	return typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_GAUGE_HISTOGRAM
}

func errDuplicate(name string, m *dto.Metric) error {
	return fmt.Errorf("collected metric %q { %s} was collected before with the same name and label values", name, m)
}

// check runs every check of c against the store: the families' own
// problems, then per family its type against the gateway's own families and
// other groups, suffix collisions and duplicate series. It is O(size of c)
// apart from decoding another group's family on a series-hash hit. The
// caller holds s.mu.
func (s *Store) check(c *change) problems {
	var p problems
	for _, b := range c.news {
		if len(b.errs) > 0 {
			p.invalid = true
			for _, err := range b.errs {
				p.add(err)
			}
			continue
		}
		if err := s.checkType(c, b); err != nil {
			p.add(err)
			continue
		}
		s.checkSuffixes(c, b, &p)
		s.checkEscaped(c, b, &p)
		s.checkSeries(c, b, &p)
		if p.full() {
			break
		}
	}
	return p
}

// checkType compares b's type with the gateway's own family of that name
// and with the family of that name in other groups. Within its own group a
// family may change type (the Pushgateway allows it on POST).
func (s *Store) checkType(c *change, b *built) error {
	if rt, ok := s.reservedType(b.name); ok && rt != b.typ {
		return fmt.Errorf("gathered metric family %s has type %s but should have %s", b.name, b.typ, rt)
	}
	e := s.names[b.name]
	if e == nil || !s.othersHave(c, e) || e.typ == b.typ {
		return nil
	}
	if len(b.metrics) == 0 {
		return fmt.Errorf("gathered metric family %s has type %s but should have %s", b.name, b.typ, e.typ)
	}
	return fmt.Errorf("collected metric %q { %s} is not a %s", b.name, b.metrics[0], e.typ)
}

// othersHave reports whether a group other than c's has a family e.
func (s *Store) othersHave(c *change, e *nameEntry) bool {
	return e.live > c.mine(e.name)
}

// Suffixes that classic histograms and summaries add in the text format.
var (
	summarySuffixes   = []string{"_count", "_sum"}
	histogramSuffixes = []string{"_count", "_sum", "_bucket"}
)

// checkSuffixes applies client_golang's suffix-collision rule to the store
// as it would be after c: a summary N collides with families N_count and
// N_sum, a histogram N also with N_bucket, in both directions. Gauge
// histograms count as histograms here (client_golang ignores them, but their
// text rendering collides all the same). A collision between two families of
// c is reported once, by the suffixed one.
func (s *Store) checkSuffixes(c *change, b *built, p *problems) {
	for _, suf := range histogramSuffixes {
		base, ok := strings.CutSuffix(b.name, suf)
		if !ok {
			continue
		}
		bt, exists := s.typeAfter(c, base)
		switch {
		case exists && bt == dto.MetricType_SUMMARY && suf != "_bucket":
			p.add(fmt.Errorf("collected metric named %q collides with previously collected summary named %q", b.name, base))
		case exists && isHistogram(bt):
			p.add(fmt.Errorf("collected metric named %q collides with previously collected histogram named %q", b.name, base))
		}
	}
	var sufs []string
	switch {
	case b.typ == dto.MetricType_SUMMARY:
		sufs = summarySuffixes
	case isHistogram(b.typ):
		sufs = histogramSuffixes
	}
	for _, suf := range sufs {
		other := b.name + suf
		if c.lookup(other) != nil {
			continue
		}
		if _, exists := s.typeAfter(c, other); exists {
			p.add(fmt.Errorf("collected histogram or summary named %q collides with previously collected metric named %q", b.name, other))
		}
	}
}

// typeAfter returns the type of family name in the store as it would be
// after c, and whether it would exist; the gateway's own families count.
func (s *Store) typeAfter(c *change, name string) (dto.MetricType, bool) {
	if b := c.lookup(name); b != nil {
		return b.typ, true
	}
	if e := s.names[name]; e != nil {
		mine := c.mine(name)
		if e.live > mine || !c.drops(name) {
			return e.typ, true
		}
	}
	return s.reservedType(name)
}

// reservedType returns the type a family name must have whatever the
// groups hold: the gateway's own families, and the two gauges every group
// carries. Were a group allowed to turn its push_failure_time_seconds
// into another type, no new group could be created beside it, since each
// new group brings that gauge along.
func (s *Store) reservedType(name string) (dto.MetricType, bool) {
	if name == PushTimeName || name == PushFailureTimeName {
		return dto.MetricType_GAUGE, true
	}
	rt, ok := s.cfg.Reserved[name]
	return rt, ok
}

// checkSeries looks up every series hash of b in the store-wide index. A
// hit in c's own group is the series being replaced; a hit in another group
// is confirmed by comparing label sets, so a hash collision is not taken
// for a duplicate.
//
// While no other index entry shares its key (as none does unless the 40
// bits the index keeps of two hashes collide), a hash that the family b
// replaces already has is owned by c's group alone, so it is not looked
// up: a push repeating its series (the usual one) then costs no index
// lookups.
func (s *Store) checkSeries(c *change, b *built, p *problems) {
	var own []uint64 // sorted
	if c.g != nil {
		if sl := c.g.slot(b.name); sl != nil {
			own = sl.fam.seriesHashes()
		}
	}
	j := 0
	hashes := b.fam.seriesHashes()
	for i, h := range hashes {
		if i > 0 && h == hashes[i-1] {
			continue // a collision inside b; its metrics were checked together
		}
		for j < len(own) && own[j] < h {
			j++
		}
		if j < len(own) && own[j] == h && s.series.unshared(h) {
			continue
		}
		var checked *group
		s.series.each(h, func(o *group) bool {
			if o == c.g || o == checked {
				return true // checked: duplicatesIn compared all its series of h
			}
			checked = o
			dups := s.duplicatesIn(o, b, h)
			for _, m := range dups {
				p.add(errDuplicate(b.name, m))
			}
			return len(dups) == 0 // report each series once, whatever the owners
		})
	}
}

// duplicatesIn returns the metrics of b with hash h that group o really
// holds. It decodes o's family of that name (from its text if no
// protobuf scrape cached its fields): the rare path.
func (s *Store) duplicatesIn(o *group, b *built, h uint64) []*dto.Metric {
	sl := o.slot(b.name)
	if sl == nil {
		return nil
	}
	stored, err := sl.fam.decode()
	if err != nil {
		s.logger.Error("stored family does not decode", "family", b.name, "err", err)
		return nil
	}
	bl := s.builders.Get().(*builder)
	defer s.builders.Put(bl)
	var dups []*dto.Metric
	for _, m := range b.metrics {
		if bl.hash(b.name, m.Label) != h {
			continue
		}
		for _, o := range stored.Metric {
			if sameLabels(o.Label, m.Label) {
				dups = append(dups, m)
				break
			}
		}
	}
	return dups
}

// checkEscaped keeps UTF-8 names apart once escaped for a scraper that did
// not ask for allow-utf-8 (every scheme of guardedSchemes): two families
// that would expose one name there (a.b and a_b under underscores), or two
// label names of one metric, would make that scrape fail or merge two
// series into one. Such a push is refused, naming both names and the
// scheme.
func (s *Store) checkEscaped(c *change, b *built, p *problems) {
	if !b.fam.utf8() && len(s.escapedNames) == 0 {
		// Legacy names throughout, and no stored UTF-8 name escapes to
		// this one: nothing below can clash (a UTF-8 family of the same
		// push is checked against this one from its own side).
		return
	}
	for _, sch := range guardedSchemes {
		if err := s.checkEscapedWith(c, b, sch); err != nil {
			p.add(err)
			return
		}
	}
}

// checkEscapedWith is checkEscaped for one scheme.
func (s *Store) checkEscapedWith(c *change, b *built, sch model.EscapingScheme) error {
	if b.fam.utf8() {
		for _, m := range b.metrics {
			if x, y := escapedLabelClash(m.Label, sch); x != "" {
				return fmt.Errorf("collected metric %q has label names %q and %q, which are the same once escaped with %s for scrapers without UTF-8 support", b.name, x, y, sch)
			}
		}
	}
	esc := escapeName(b.name, sch)
	if esc != b.name {
		if _, exists := s.typeAfter(c, esc); exists {
			return fmt.Errorf("metric name %q is %q once escaped with %s for scrapers without UTF-8 support, which is the name of another metric", b.name, esc, sch)
		}
	}
	if other := s.escapedTwin(c, b.name, esc, sch); other != "" {
		return fmt.Errorf("metric names %q and %q are the same once escaped with %s for scrapers without UTF-8 support (%q)", b.name, other, sch, esc)
	}
	return nil
}

// escapedTwin returns a family name other than name that exists after c,
// is not a legacy name and escapes to esc with sch, or "". A legacy name
// meets the new names of c through their own check (typeAfter), so only a
// UTF-8 name scans them.
func (s *Store) escapedTwin(c *change, name, esc string, sch model.EscapingScheme) string {
	if !legacyName(name) {
		for _, o := range c.news {
			if o.name != name && !legacyName(o.name) && escapeName(o.name, sch) == esc {
				return o.name
			}
		}
	}
	if o, ok := s.escapedNames[escapedKey{sch, esc}]; ok && o != name {
		if _, exists := s.typeAfter(c, o); exists {
			return o
		}
	}
	return ""
}
