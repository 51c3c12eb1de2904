package store

import (
	"fmt"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"
)

// UTF-8 names (decision 14). Families keep their names as pushed; a
// scrape that did not ask for allow-utf-8 gets them escaped. Escaping is
// per family and only for the families it changes: as in
// model.EscapeMetricFamily (which the Pushgateway's scrape uses), every
// scheme leaves legacy names alone, so those are the families with a
// non-legacy name or label name, marked when they are built, and the
// scrape of every other family stays a copy of pre-rendered bytes.

// legacyName reports whether s is a legacy metric name, as
// model.LegacyValidation.IsValidMetricName does: [a-zA-Z_:][a-zA-Z0-9_:]*.
// A byte loop: every byte of a non-ASCII rune is refused on its own.
func legacyName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLegacyNameByte(c) {
			return false
		}
	}
	return true
}

// legacyLabelName reports whether s is a legacy label name, as
// model.LegacyValidation.IsValidLabelName does: [a-zA-Z_][a-zA-Z0-9_]*.
func legacyLabelName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ':' || !isLegacyNameByte(c) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLegacyNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == ':'
}

// hasUTF8Names reports whether the family name or a label name of ms is not
// a legacy name.
func hasUTF8Names(name string, ms []*dto.Metric) bool {
	if !legacyName(name) {
		return true
	}
	for _, m := range ms {
		for _, lp := range m.GetLabel() {
			if !legacyLabelName(lp.GetName()) {
				return true
			}
		}
	}
	return false
}

// escapes reports whether the encoder's scheme changes the family name or
// a label name of the stored families mems.
func (e *encoder) escapes(name string, mems []member) bool {
	if e.escaping == model.NoEscaping {
		return false
	}
	if !legacyName(name) {
		return true
	}
	for _, m := range mems {
		if m.utf8 {
			return true
		}
	}
	return false
}

// ownEscapes reports whether scheme changes a name of an own family.
func ownEscapes(mf *dto.MetricFamily, scheme model.EscapingScheme) bool {
	return scheme != model.NoEscaping && hasUTF8Names(mf.GetName(), mf.Metric)
}

// escaped writes head's metrics followed by those of fams, all under
// head's name, help and type, with every name escaped: the slow path.
func (e *encoder) escaped(head *dto.MetricFamily, fams []*family) error {
	mf := &dto.MetricFamily{Name: head.Name, Help: head.Help, Type: head.Type, Unit: head.Unit}
	mf.Metric = append(mf.Metric, head.Metric...)
	for _, f := range fams {
		if f.series() == 0 {
			continue
		}
		d, err := f.decode()
		if err != nil {
			return err
		}
		mf.Metric = append(mf.Metric, d.Metric...)
	}
	if len(mf.Metric) == 0 {
		return nil
	}
	mf = model.EscapeMetricFamily(mf, e.escaping)
	var err error
	switch e.format {
	case FormatProtoDelim:
		_, err = protodelim.MarshalTo(e.w, mf)
	case FormatOpenMetrics:
		mf.Unit = nil // see appendOMHeader
		_, err = expfmt.MetricFamilyToOpenMetrics(e.w, mf)
	default:
		_, err = expfmt.MetricFamilyToText(e.w, mf)
	}
	if err != nil {
		return fmt.Errorf("render family %q escaped with %s: %w", head.GetName(), e.escaping, err)
	}
	return nil
}

// guardedSchemes are the escaping schemes under which the check keeps
// names apart (checkEscaped): every scheme but allow-utf-8.
var guardedSchemes = []model.EscapingScheme{model.UnderscoreEscaping, model.DotsEscaping, model.ValueEncodingEscaping}

// escapedKey is a name as a scrape with an escaping scheme exposes it.
type escapedKey struct {
	scheme model.EscapingScheme
	name   string
}

// escapeName returns name as a scrape with scheme exposes it: legacy names
// as they are, as model.EscapeMetricFamily leaves them.
func escapeName(name string, scheme model.EscapingScheme) string {
	if legacyName(name) {
		return name
	}
	return model.EscapeName(name, scheme)
}

// escapedLabelClash returns the first pair of distinct label names of ls
// that are equal once escaped with scheme, or "", "".
func escapedLabelClash(ls []*dto.LabelPair, scheme model.EscapingScheme) (string, string) {
	seen := make(map[string]string, len(ls))
	for _, lp := range ls {
		n := lp.GetName()
		esc := escapeName(n, scheme)
		if prev, ok := seen[esc]; ok && prev != n {
			return prev, n
		}
		seen[esc] = n
	}
	return "", ""
}
