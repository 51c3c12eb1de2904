package store

import (
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
)

// A store writes its persistence file on several goroutines: the caller
// copies out references to the (immutable) families of refBatch groups per
// hold of the lock, and hands the batch to one of up to maxPersistWorkers
// encoders, which encodes it outside the lock into a buffer of whole map
// entries and appends the buffer to the file. The map's entries may come in any order,
// so the encoders need not wait for each other, only for the file. Nothing
// grows with the store: batchesPerWorker batches of references per encoder
// and one buffer of encoded entries each.

// refBatch is how many groups are copied out per hold of the lock.
const refBatch = 256

// maxPersistWorkers bounds the encoders of a write: on a large machine the
// file, not the encoding, is the limit well before that.
const maxPersistWorkers = 4

// batchesPerWorker: one batch being encoded and one waiting per encoder, so
// that the lock holder rarely waits for a free batch.
const batchesPerWorker = 2

// WriteFile replaces the persistence file at path with the store's groups,
// as the package's file format has them (persist.go), crash-safely
// (writeFileWith). Each group is written as it was at one instant; groups
// removed meanwhile are left out, groups added may or may not be in the
// file. The lock is held only while references are copied out. A family
// that does not encode (a bug: the store rendered it) is logged and left
// out, as in Snapshot.
func (s *Store) WriteFile(path string) error {
	workers := min(runtime.GOMAXPROCS(0), maxPersistWorkers)
	return writeFileWith(path, func(fw *fileWriter) error {
		p := startEncoders(fw, workers, s.logger)
		s.collect(p)
		return p.stop()
	})
}

// groupBatch is refBatch groups copied out under the lock.
type groupBatch struct {
	refs []groupRef
	// fams holds the families of refs end to end: one buffer, kept from
	// batch to batch, rather than a slice per group and write.
	fams []*family
}

func (b *groupBatch) reset() {
	clear(b.refs)
	b.refs = b.refs[:0]
	clear(b.fams)
	b.fams = b.fams[:0]
}

// add copies out g's references. The caller holds the store's lock.
// A group's families may lie in an array that a later add outgrew: that
// array keeps them until the batch is reset, and nothing else writes it.
func (b *groupBatch) add(g *group) {
	start := len(b.fams)
	for _, sl := range g.slots {
		b.fams = append(b.fams, sl.fam)
	}
	b.refs = append(b.refs, groupRef{key: g.key, version: g.version, deadline: g.deadline, fams: b.fams[start:len(b.fams):len(b.fams)]})
}

// collect copies the groups out, a batch per hold of the lock, and hands
// each batch to the encoders, until every group is out or an encoder
// failed. It resumes the same iteration of the map after each release of
// the lock: the map is only touched under the lock, and Go's map iteration
// allows changes between steps (a group removed before it is reached is
// not visited, one added may or may not be).
func (s *Store) collect(p *encoders) {
	b := p.next()
	if b == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		b.add(g)
		if len(b.refs) < refBatch {
			continue
		}
		s.mu.Unlock()
		p.todo <- b
		b = p.next()
		s.mu.Lock()
		if b == nil {
			return
		}
	}
	p.todo <- b
}

// encoders is the pool of goroutines that encode batches of groups and
// append them to one file. startEncoders starts them; stop, called once by
// the goroutine that started them, ends them and returns the first error.
type encoders struct {
	todo   chan *groupBatch // to encode; never blocks: it holds every batch
	free   chan *groupBatch // encoded, to fill again; likewise
	failed atomic.Bool
	wg     sync.WaitGroup
	logger *slog.Logger

	mu  sync.Mutex // the file, and err
	fw  *fileWriter
	err error
}

func startEncoders(fw *fileWriter, workers int, logger *slog.Logger) *encoders {
	n := workers * batchesPerWorker
	p := &encoders{
		todo: make(chan *groupBatch, n), free: make(chan *groupBatch, n),
		fw: fw, logger: logger,
	}
	for range n {
		p.free <- &groupBatch{refs: make([]groupRef, 0, refBatch)}
	}
	p.wg.Add(workers)
	for range workers {
		go p.run()
	}
	return p
}

// next returns an empty batch, waiting for one if all are in use, or nil
// once an encoder failed.
func (p *encoders) next() *groupBatch {
	b := <-p.free
	if p.failed.Load() {
		return nil
	}
	b.reset()
	return b
}

// stop lets the encoders finish what they were given, waits for them and
// returns the first error.
func (p *encoders) stop() error {
	close(p.todo)
	p.wg.Wait()
	return p.err
}

// run encodes batches until todo is closed. After a failure anywhere it
// passes batches back without encoding them.
func (p *encoders) run() {
	defer p.wg.Done()
	var e entryEncoder
	for b := range p.todo {
		if !p.failed.Load() {
			if err := p.encode(&e, b); err != nil {
				p.fail(err)
			}
		}
		p.free <- b
	}
}

func (p *encoders) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
	p.failed.Store(true)
}

// encode encodes b into whole map entries and appends them to the file.
func (p *encoders) encode(e *entryEncoder, b *groupBatch) error {
	e.out = e.out[:0]
	e.sink += warm(b.refs)
	for _, r := range b.refs {
		if err := e.group(r, p.logger); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil // the file is abandoned
	}
	return p.fw.writeEntries(e.out, uint64(len(b.refs)))
}

// entryEncoder is one encoder's scratch space and output.
type entryEncoder struct {
	out  []byte // the entries of one batch
	fams []byte // the families of the entry being built
	pb   []byte // one family's protobuf
	text textScratch
	sink int // keeps warm's loads
}

// warm reads, for every group of a batch, the key and, of every family,
// the header (the cache lines of it a write reads: see family) and every
// cache line of the text, in two tight loops, before the families are
// encoded one by one. The families of a store lie all over the heap, and
// encoding them in turn waits for memory at each: four or five misses a
// family, one after the other, were most of a write's time. Loads that do
// not depend on each other are in flight together, so these loops wait
// for many misses at once and leave the batch in the cache.
func warm(refs []groupRef) int {
	n := 0
	for _, r := range refs {
		for _, f := range r.fams {
			n += len(f.name) + len(f.data) + len(f.help) // both header lines
		}
	}
	for _, r := range refs {
		if k := r.key.String(); k != "" {
			n += int(k[0])
		}
		for _, f := range r.fams {
			for i := 0; i < len(f.data); i += 64 {
				n += int(f.data[i])
			}
			if len(f.data) > 0 { // the last line, when data is not aligned
				n += int(f.data[len(f.data)-1])
			}
			if c := f.createdTimes(); len(c) > 0 {
				n += int(c[0])
			}
		}
	}
	return n
}

// group appends the map entry of one group to e.out, its families
// encoded in place. A family that does not encode sends the group to
// groupLeavingOut.
func (e *entryEncoder) group(r groupRef, logger *slog.Logger) error {
	start := e.out
	s := entryHead(e.out, r.key, len(r.fams))
	for _, f := range r.fams {
		pb, err := f.appendFileProtobuf(e.pb[:0], &e.text)
		if err != nil {
			e.out = start
			return e.groupLeavingOut(r, logger)
		}
		e.pb = pb
		if s.b, err = appendFamily(s.b, f.name, f.pushTime(), pb); err != nil {
			e.out = start
			return fmt.Errorf("%w: group %q: %w", ErrInvalidGroup, r.key.String(), err)
		}
	}
	out, err := s.entryTail(start, r.key, r.version, r.deadline)
	e.out = out
	return err
}

// groupLeavingOut appends the map entry of one group to e.out without the
// families that do not encode, and logs them.
func (e *entryEncoder) groupLeavingOut(r groupRef, logger *slog.Logger) error {
	fams, n := e.fams[:0], 0
	for _, f := range r.fams {
		pb, err := f.appendFileProtobuf(e.pb[:0], &e.text)
		if err != nil {
			logger.Error("persistence: stored family does not encode", "group", formatKey(r.key), "err", err)
			continue
		}
		e.pb = pb
		if fams, err = appendFamily(fams, f.name, f.pushTime(), pb); err != nil {
			return fmt.Errorf("%w: group %q: %w", ErrInvalidGroup, r.key.String(), err)
		}
		n++
	}
	e.fams = fams
	out, err := appendEntry(e.out, r.key, r.version, r.deadline, fams, n)
	e.out = out
	return err
}
