package main

import (
	"errors"
	"fmt"
)

// runGroup runs a set of actors, each in its own goroutine, until the first
// one returns. Then it interrupts every actor in the order they were added,
// one after the other, and waits for all of them. An interrupt may block (an
// HTTP server's graceful shutdown does), which is what makes the shutdown
// order explicit: stop accepting and drain first, persist last.
type runGroup struct {
	actors []actor
}

// actor is one long-running part of the process.
type actor struct {
	name string
	// execute runs until the actor is done or interrupted.
	execute func() error
	// interrupt makes execute return. The group calls it exactly once,
	// possibly after execute has already returned.
	interrupt func()
}

// add appends an actor.
func (g *runGroup) add(name string, execute func() error, interrupt func()) {
	g.actors = append(g.actors, actor{name: name, execute: execute, interrupt: interrupt})
}

type actorResult struct {
	name string
	err  error
}

// run starts every actor and returns when all have returned: nil if none
// failed, otherwise every failure joined, each prefixed by its actor's name.
func (g *runGroup) run() error {
	if len(g.actors) == 0 {
		return nil
	}
	done := make(chan actorResult, len(g.actors))
	for _, a := range g.actors {
		go func() { done <- actorResult{name: a.name, err: a.execute()} }()
	}
	results := []actorResult{<-done}
	for _, a := range g.actors {
		a.interrupt()
	}
	for range len(g.actors) - 1 {
		results = append(results, <-done)
	}
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
		}
	}
	return errors.Join(errs...)
}
