// Package helm holds pushring's Helm chart (pushring/); it has no Go code
// of its own. Its tests render the chart with Helm's own library, as
// `helm template` does, across a matrix of values, decode every object
// strictly into the Kubernetes API types, check that the objects agree
// with each other and with the pushring binary's flags, and run Helm's
// linter on it.
package helm
