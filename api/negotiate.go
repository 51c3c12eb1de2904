package api

import (
	"net/http"

	"github.com/munnerz/goautoneg"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pushring/pushring/store"
)

// Versions of the exposition formats a scrape can be answered in.
const (
	textVersion004 = "0.0.4"
	textVersion100 = "1.0.0"
	omVersion001   = "0.0.1"
	omVersion100   = "1.0.0"
)

// Negotiation is how a scrape is answered: the format, its version and the
// escaping scheme of the names (shared/DESIGN.md decision 14).
type Negotiation struct {
	// Format is the store's format, escaping scheme included.
	Format store.Format
	// Version is the version of the text or OpenMetrics format asked for;
	// empty for protobuf.
	Version string
}

// ContentType is the answer's Content-Type: the format, its version and
// the escaping scheme, as the Pushgateway's client library names them.
func (n Negotiation) ContentType() string {
	var f expfmt.Format
	switch n.Format.Type() {
	case store.FormatProtoDelim:
		f = expfmt.FmtProtoDelim
	case store.FormatOpenMetrics:
		f = expfmt.Format(expfmt.OpenMetricsType + "; version=" + n.Version + "; charset=utf-8")
	default:
		f = expfmt.Format("text/plain; version=" + n.Version + "; charset=utf-8")
	}
	return string(f.WithEscapingScheme(n.Format.Escaping()))
}

// errorContentType is the Content-Type of a scrape's error answer: plain
// text, versioned, with the escaping negotiated.
func (n Negotiation) errorContentType() string {
	return Negotiation{Format: store.FormatText.WithEscaping(n.Format.Escaping()), Version: textVersion004}.ContentType()
}

// Negotiate chooses how to answer a scrape with Accept header h. Whenever
// the scraper accepts a format the Pushgateway serves (delimited protobuf,
// text), the answer is in the one it prefers of those, so that Prometheus 3,
// which prefers OpenMetrics, ingests from pushring what it ingests from the
// Pushgateway. OpenMetrics is the answer only when it is the only format
// accepted, or when openMetricsFirst (--web.prefer-openmetrics) puts it
// first; its version is the one asked for. Anything else, or no Accept
// header, gets text 0.0.4.
//
// Names are escaped with the scheme of the chosen Accept entry's escaping
// parameter, underscores when it has none, so a scraper that did not ask for
// allow-utf-8 never receives a UTF-8 name. (The Pushgateway carries an
// escaping parameter of an entry it skipped over to the entry it answers;
// pushring reads only the entry it answers, which Prometheus 3 gives
// allow-utf-8 whenever it gives it to any.)
//
// Every scrape endpoint calls it, and answers with its ContentType.
func Negotiate(h http.Header, openMetricsFirst bool) Negotiation {
	entries := goautoneg.ParseAccept(h.Get("Accept"))
	first, second := isPushgatewayFormat, isOpenMetrics
	if openMetricsFirst {
		first, second = isOpenMetrics, isPushgatewayFormat
	}
	for _, pick := range []func(acceptEntry) bool{first, second} {
		for _, ac := range entries {
			if e := classify(ac); ac.Q > 0 && e.ok && pick(e) {
				return e.negotiation(ac)
			}
		}
	}
	return Negotiation{Format: store.FormatText.WithEscaping(model.UnderscoreEscaping), Version: textVersion004}
}

// acceptEntry is an Accept entry pushring can answer.
type acceptEntry struct {
	format  store.Format
	version string
	ok      bool
}

func isPushgatewayFormat(e acceptEntry) bool { return e.format != store.FormatOpenMetrics }

func isOpenMetrics(e acceptEntry) bool { return e.format == store.FormatOpenMetrics }

// classify maps an Accept entry to the format it asks for. A wildcard
// accepts text 0.0.4, the answer the Pushgateway falls back to.
func classify(ac goautoneg.Accept) acceptEntry {
	version := ac.Params["version"]
	switch {
	case ac.Type == "*" || (ac.Type == "text" && ac.SubType == "*"):
		return acceptEntry{format: store.FormatText, version: textVersion004, ok: true}
	case ac.Type == "text" && ac.SubType == "plain":
		switch version {
		case "", textVersion004:
			return acceptEntry{format: store.FormatText, version: textVersion004, ok: true}
		case textVersion100:
			return acceptEntry{format: store.FormatText, version: textVersion100, ok: true}
		}
	case ac.Type+"/"+ac.SubType == expfmt.ProtoType:
		ok := ac.Params["proto"] == expfmt.ProtoProtocol && ac.Params["encoding"] == "delimited"
		return acceptEntry{format: store.FormatProtoDelim, ok: ok}
	case ac.Type+"/"+ac.SubType == expfmt.OpenMetricsType:
		switch version {
		case "", omVersion001:
			return acceptEntry{format: store.FormatOpenMetrics, version: omVersion001, ok: true}
		case omVersion100:
			return acceptEntry{format: store.FormatOpenMetrics, version: omVersion100, ok: true}
		}
	}
	return acceptEntry{}
}

// negotiation is the answer to entry ac, classified as e.
func (e acceptEntry) negotiation(ac goautoneg.Accept) Negotiation {
	esc := model.UnderscoreEscaping
	if v := ac.Params[model.EscapingKey]; v != "" {
		if s, err := model.ToEscapingScheme(v); err == nil {
			esc = s
		}
	}
	return Negotiation{Format: e.format.WithEscaping(esc), Version: e.version}
}
