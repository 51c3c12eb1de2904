// Package k8s holds pushring's Kubernetes manifests and Prometheus
// configuration examples; it has no Go code of its own. Its tests decode
// every YAML document here strictly into the Kubernetes API types (or small
// local types for kustomize, Prometheus and the Prometheus Operator) and
// check that the objects agree with each other and with the gateway binary:
// selectors, ports, probes, flags, grace periods, the TTL rules file and the
// scrape configurations. docs/kubernetes.md explains the objects.
package k8s
