package main

import (
	"errors"

	"github.com/pushring/pushring/cluster"
	"github.com/pushring/pushring/ingest"
)

// reloadAll is what SIGHUP and /-/reload re-read: the TTL rules file and
// the gossip key file. The api sees it as its Ingester; everything but
// the reload is the ingester's.
type reloadAll struct {
	*ingest.Ingester
	cluster *cluster.Cluster
}

// ReloadRules re-reads both files; each keeps what is in force when its
// file is broken, and the error names the file.
func (r reloadAll) ReloadRules() error {
	return errors.Join(r.Ingester.ReloadRules(), r.cluster.ReloadKeys())
}
