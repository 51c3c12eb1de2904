package store_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pushring/pushring/store"
)

// TestConcurrentApplyAndScrape runs writers (PUT, POST, rejected pushes,
// deletes, TTLs) against scrapers in every format and an expirer. Under
// -race it checks the locking; the scrapes must stay valid expositions
// throughout and the indexes must match the groups at the end.
func TestConcurrentApplyAndScrape(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, _ := newStore(t, nil)
	const writers, pushes = 4, 120

	var (
		mu   sync.Mutex
		errs []error
	)
	report := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}

	var writing sync.WaitGroup
	for w := range writers {
		writing.Go(func() { runWriter(s, w, pushes, report) })
	}
	for w := range 2 {
		writing.Go(func() { runRepeater(s, w, pushes, report) })
	}
	done := make(chan struct{})
	var scraping sync.WaitGroup
	for _, f := range []store.Format{store.FormatText, store.FormatProtoDelim, store.FormatOpenMetrics} {
		scraping.Go(func() { runScraper(s, f, done, report) })
	}
	scraping.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			s.Expire(t1.Add(time.Duration(i%pushes) * time.Second))
		}
	})
	writing.Wait()
	close(done)
	scraping.Wait()

	require.Empty(t, errs)
	checkInvariants(t, s)
	groups, _ := s.Stats()
	require.Len(t, s.Snapshot(), groups)
}

// runWriter pushes to ten groups of its own. Writers disagree about the type
// of family "shared", so some pushes are rejected; every seventh step
// deletes a group.
func runWriter(s *store.Store, w, pushes int, report func(error)) {
	typ := "counter"
	if w%2 == 1 {
		typ = "gauge"
	}
	for i := range pushes {
		k := key("job", "w", "writer", strconv.Itoa(w), "g", strconv.Itoa(i%10))
		body := fmt.Sprintf("# TYPE m%d gauge\nm%d{i=\"%d\"} %d\n# TYPE shared %s\nshared 1\n", i%3, i%3, i, i, typ)
		fams, err := parseTextErr(body)
		if err != nil {
			report(err)
			return
		}
		at := t1.Add(time.Duration(i) * time.Second)
		err = s.Apply(store.Push{Key: k, Replace: i%2 == 0, Families: sanitize(fams, k), Time: at, TTL: time.Duration(i%4) * time.Second})
		if err != nil && !strings.Contains(err.Error(), `collected metric "shared"`) {
			report(fmt.Errorf("writer %d push %d: %w", w, i, err))
		}
		if i%7 == 6 {
			s.Delete(k)
		}
	}
}

// runRepeater pushes new values to five groups it shares with the other
// repeater: repeated pushes (store.ApplyRepeat) where the store takes
// them, else the full way and the shape learnt; every fifth push of
// repeater 1 is of another shape, and every eleventh step deletes a group.
func runRepeater(s *store.Store, w, pushes int, report func(error)) {
	series := [][]byte{[]byte(`r{i="1"}`), []byte(`r{i="2"}`)}
	repeated := 0
	defer func() {
		if repeated == 0 {
			report(fmt.Errorf("repeater %d: no push was repeated", w))
		}
	}()
	for i := range pushes {
		k := key("job", "r", "g", strconv.Itoa(i%5))
		at := t1.Add(time.Duration(i) * time.Second)
		values := []float64{float64(i), float64(w)}
		r := store.Repeat{Key: k, Replace: true, Shape: 1, Values: values, Time: at, TTL: time.Duration(i%3) * time.Second}
		if w == 1 && i%5 == 0 {
			fams, err := parseTextErr(fmt.Sprintf("# TYPE r gauge\nr{i=\"1\"} %d\n", i))
			if err == nil {
				err = s.Apply(store.Push{Key: k, Replace: true, Families: sanitize(fams, k), Time: at})
			}
			if err != nil {
				report(fmt.Errorf("repeater %d push %d: %w", w, i, err))
			}
			continue
		}
		if s.ApplyRepeat(r) {
			repeated++
		} else {
			fams, err := parseTextErr(fmt.Sprintf("# TYPE r gauge\nr{i=\"1\"} %d\nr{i=\"2\"} %d\n", i, w))
			if err == nil {
				err = s.Apply(store.Push{Key: k, Replace: true, Families: sanitize(fams, k), Time: at, TTL: r.TTL})
			}
			if err != nil {
				report(fmt.Errorf("repeater %d push %d: %w", w, i, err))
				continue
			}
			s.LearnRepeat(r, func() [][]byte { return series })
		}
		if i%11 == 10 {
			s.Delete(k)
		}
	}
}

// runScraper scrapes until done and checks that each text scrape parses
// (a family name twice, or a sample without its family, would not) and
// that each protobuf scrape decodes.
func runScraper(s *store.Store, f store.Format, done <-chan struct{}, report func(error)) {
	for {
		select {
		case <-done:
			return
		default:
		}
		var buf bytes.Buffer
		if err := s.WriteExposition(&buf, f, ownFamilies()); err != nil {
			report(err)
			return
		}
		switch f {
		case store.FormatText:
			if _, err := parseTextErr(buf.String()); err != nil {
				report(fmt.Errorf("scrape does not parse: %w", err))
				return
			}
		case store.FormatProtoDelim:
			if _, err := decodeDelimitedErr(buf.Bytes()); err != nil {
				report(fmt.Errorf("scrape does not decode: %w", err))
				return
			}
		case store.FormatOpenMetrics:
			if !bytes.HasSuffix(buf.Bytes(), []byte("# EOF\n")) {
				report(fmt.Errorf("OpenMetrics scrape without # EOF"))
				return
			}
		}
	}
}
