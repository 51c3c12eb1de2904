package store

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// ownPrefix starts the names of the gateway's own metrics. Pushed families
// may not use it, so a pusher can never shadow or break them.
const ownPrefix = "pushring_"

// Config configures a Store. It has no flags: everything in it is decided by
// the program at start-up.
type Config struct {
	// Reserved maps the names of the gateway's own families (go_*,
	// process_*, pushring_*) to their types. A pushed family of such a name
	// must have the same type; it is then merged into the own family at
	// scrape time, under the own HELP. Set it once, before the first push;
	// ReservedFamilies builds it from a Gatherer. The store does not modify
	// the map.
	Reserved map[string]dto.MetricType
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for name, typ := range c.Reserved {
		if !model.LegacyValidation.IsValidMetricName(name) {
			return fmt.Errorf("reserved family name %q is not a valid metric name", name)
		}
		if _, ok := dto.MetricType_name[int32(typ)]; !ok {
			return fmt.Errorf("reserved family %q has unknown type %d", name, typ)
		}
	}
	return nil
}

// ReservedFamilies gathers g once and returns the names and types of its
// families, for Config.Reserved. Families without series at the time of the
// call are included as well, as long as g reports them.
func ReservedFamilies(g prometheus.Gatherer) (map[string]dto.MetricType, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather own families: %w", err)
	}
	m := make(map[string]dto.MetricType, len(mfs))
	for _, mf := range mfs {
		m[mf.GetName()] = mf.GetType()
	}
	return m, nil
}

// isOwnName reports whether name is reserved for the gateway's own metrics.
func isOwnName(name string) bool { return strings.HasPrefix(name, ownPrefix) }
