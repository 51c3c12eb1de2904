package ingest

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/pushring/pushring/store"
)

// TTLHeader is the request header that sets the TTL of the pushed group, in
// Go duration syntax ("90s", "5m", "1h30m"); "0" means the group never
// expires. It overrides the rules file and --push.ttl for that push.
const TTLHeader = "Pushring-TTL"

// ttlHeaderKey is TTLHeader as net/http stores it in a Header map.
var ttlHeaderKey = textproto.CanonicalMIMEHeaderKey(TTLHeader)

// ttlFor returns the TTL of a push to the group with grouping labels ls
// (its key's Labels) whose request carried the TTLHeader values header: the
// header's when there is one, else the first matching rule's, else
// --push.ttl. A malformed header is a 400.
func (in *Ingester) ttlFor(ls []store.Label, header []string) (time.Duration, error) {
	if len(header) > 0 {
		return parseTTLHeader(header)
	}
	if d, ok := in.rules.Load().match(ls); ok {
		return d, nil
	}
	return in.cfg.TTL, nil
}

// parseTTLHeader parses the values of a TTLHeader that is present. A
// header sent more than once is refused rather than guessed at.
func parseTTLHeader(vals []string) (time.Duration, error) {
	if len(vals) > 1 {
		return 0, badRequest("invalid %s header %s: sent %d times; send it once",
			TTLHeader, quoteShort(strings.Join(vals, ", ")), len(vals))
	}
	d, err := parseTTL(vals[0])
	if err != nil {
		return 0, badRequest("invalid %s header %s: %v", TTLHeader, quoteShort(vals[0]), err)
	}
	return d, nil
}

// ReloadRules re-reads --push.ttl-rules-file. On success the new rules
// apply to every later push; on error the previous rules stay in force and
// the error (naming the file, rule and field) is logged and returned. It is
// safe for concurrent use; concurrent reloads run one at a time, so the
// last to finish has read the file last.
func (in *Ingester) ReloadRules() error {
	in.reloadMu.Lock()
	defer in.reloadMu.Unlock()
	file := in.cfg.TTLRulesFile
	rs, err := loadRules(file)
	if err != nil {
		in.metrics.reloads.WithLabelValues(resultFailure).Inc()
		in.metrics.reloadOK.Set(0)
		in.logger.Error("reloading TTL rules failed; keeping the previous rules",
			"file", file, "rules", in.rules.Load().len(), "err", err)
		return fmt.Errorf("reload TTL rules: %w", err)
	}
	in.rules.Store(rs)
	in.metrics.reloads.WithLabelValues(resultSuccess).Inc()
	in.metrics.lastReload.Set(unixSeconds(in.now()))
	in.metrics.reloadOK.Set(1)
	in.logger.Info("TTL rules reloaded", "file", file, "rules", rs.len())
	return nil
}

// unixSeconds is t as the float seconds of a *_timestamp_seconds gauge.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
