package main

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// blocker is an actor that runs until interrupted and records the order of
// interrupts.
type blocker struct {
	name  string
	stop  chan struct{}
	err   error
	order *[]string
	mu    *sync.Mutex
}

func newBlocker(name string, order *[]string, mu *sync.Mutex, err error) *blocker {
	return &blocker{name: name, stop: make(chan struct{}), err: err, order: order, mu: mu}
}

func (b *blocker) execute() error { <-b.stop; return b.err }

func (b *blocker) interrupt() {
	b.mu.Lock()
	*b.order = append(*b.order, b.name)
	b.mu.Unlock()
	close(b.stop)
}

func TestRunGroupInterruptsInOrderAndJoins(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string
		g     runGroup
	)
	first := make(chan struct{})
	g.add("trigger", func() error { <-first; return nil }, func() {
		mu.Lock()
		order = append(order, "trigger")
		mu.Unlock()
	})
	for _, name := range []string{"server", "persister"} {
		b := newBlocker(name, &order, &mu, nil)
		g.add(name, b.execute, b.interrupt)
	}
	close(first)
	require.NoError(t, g.run())
	require.Equal(t, []string{"trigger", "server", "persister"}, order)
}

func TestRunGroupCollectsErrors(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string
		g     runGroup
	)
	boom := errors.New("boom")
	g.add("failing", func() error { return boom }, func() {})
	late := newBlocker("late", &order, &mu, errors.New("late failure"))
	g.add("late", late.execute, late.interrupt)
	err := g.run()
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "failing: boom")
	require.ErrorContains(t, err, "late: late failure")
}

func TestRunGroupEmpty(t *testing.T) {
	var g runGroup
	require.NoError(t, g.run())
}
