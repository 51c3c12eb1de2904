package store

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// The persistence file is the Pushgateway's: a single encoding/gob value of
// type map[string]fileGroup keyed by the encoded grouping key. gob matches
// struct fields by name and ignores the names of the types themselves, so the
// unexported types below are read and written interchangeably with the
// Pushgateway's MetricGroup, TimestampedMetricFamily and GobbableMetricFamily
// (verified against the real binary in persist_test.go).
//
// Fields pushring adds (Version, Deadline) are skipped by a
// Pushgateway decoder that does not know them, and a Pushgateway file simply
// leaves them at their zero value here, so files move both ways.

// fileGroup is one group of the file (the Pushgateway's MetricGroup).
type fileGroup struct {
	// Labels are the grouping labels. The Pushgateway shows them in its UI
	// and JSON API; pushring writes them for it but reads the key instead.
	Labels map[string]string
	// Metrics maps a family name to the family and the time of the push
	// that last wrote it.
	Metrics map[string]fileFamily
	// Version is pushring's group version (docs/cluster.md, "Ordering"). Unknown
	// to the Pushgateway, which skips it.
	Version uint64
	// Deadline is when the group expires by its TTL, zero for never.
	// Unknown to the Pushgateway, which skips it (and writes the group back
	// without it: a file that went through a Pushgateway has no TTLs).
	Deadline time.Time
}

// fileFamily is the Pushgateway's TimestampedMetricFamily.
type fileFamily struct {
	Timestamp            time.Time
	GobbableMetricFamily *protoFamily
}

// protoFamily stores a family as its binary protobuf encoding, which is what
// the Pushgateway's GobbableMetricFamily does. Going through protobuf keeps
// the file independent of the Go layout of the generated dto types.
type protoFamily struct {
	mf *dto.MetricFamily
}

// GobEncode implements gob.GobEncoder.
func (p *protoFamily) GobEncode() ([]byte, error) {
	return proto.Marshal(p.mf)
}

// GobDecode implements gob.GobDecoder.
func (p *protoFamily) GobDecode(b []byte) error {
	mf := &dto.MetricFamily{}
	if err := proto.Unmarshal(b, mf); err != nil {
		return err
	}
	p.mf = mf
	return nil
}

// Errors of ReadFile and WriteFile.
var (
	// ErrCorrupt is wrapped by ReadFile's error when the file exists but is
	// not a persistence file: empty, truncated, garbage, or a gob value of
	// another type. Nothing of such a file is returned.
	ErrCorrupt = errors.New("persistence file is corrupt")
	// ErrInvalidGroup is wrapped by the error of every group that ReadFile
	// skipped, or that made WriteFile give up, because the group itself is
	// malformed (bad key, missing or misnamed family).
	ErrInvalidGroup = errors.New("invalid group in persistence file")
)

// ReadFile reads a persistence file written by WriteFile or by the
// Pushgateway (1.0 and later). A missing file returns nil, nil.
//
// If the file cannot be decoded as a whole, ReadFile returns nil and an error
// wrapping ErrCorrupt. Errors opening or reading the file are returned as they
// are and do not wrap ErrCorrupt, so a caller does not mistake an unreadable
// disk for a corrupt file.
//
// Otherwise the groups are returned sorted by key with their families sorted
// by name. A malformed group is left out and reported in the returned error
// (an errors.Join of errors wrapping ErrInvalidGroup) next to the groups that
// were read, the same contract as Store.Restore.
//
// The map key decides a group's identity, not the group's Labels: the
// Pushgateway finds a group by its key on every push and delete, so loading by
// key keeps a later DELETE of the same URL working. Labels that disagree with
// the key are ignored.
//
// Anything after the gob value is ignored, as the Pushgateway does.
func ReadFile(path string) ([]GroupSnapshot, error) {
	raw, err := decodePersistFile(path)
	if err != nil || raw == nil {
		return nil, err
	}
	return groupsFromFile(raw)
}

// decodeFile decodes the gob value of the file at path. A missing file
// returns nil, nil.
func decodePersistFile(path string) (map[string]fileGroup, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open persistence file: %w", err)
	}
	defer f.Close()
	if err := requireRegularFile(f); err != nil {
		return nil, err
	}
	r := &readErrRecorder{r: bufio.NewReaderSize(f, 64<<10)}
	raw := map[string]fileGroup{}
	if err := gob.NewDecoder(r).Decode(&raw); err != nil {
		if r.err != nil {
			return nil, fmt.Errorf("read persistence file %s: %w", path, r.err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return raw, nil
}

// requireRegular rejects directories and devices, which open fine but are
// not persistence files and must not be treated (and moved aside) as corrupt.
func requireRegularFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat persistence file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("persistence file %s is not a regular file (mode %s)", f.Name(), fi.Mode())
	}
	return nil
}

// readErrRecorder remembers the first read error other than io.EOF. gob
// reports a failing disk and a truncated file alike; this tells them apart.
type readErrRecorder struct {
	r   io.Reader
	err error
}

func (e *readErrRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// fromFile converts the decoded file into snapshots, skipping and reporting
// malformed groups.
func groupsFromFile(raw map[string]fileGroup) ([]GroupSnapshot, error) {
	groups := make([]GroupSnapshot, 0, len(raw))
	var errs []error
	for enc, fg := range raw {
		g, err := groupFromFile(enc, fg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Key.Less(groups[j].Key) })
	return groups, errors.Join(errs...)
}

func groupFromFile(enc string, fg fileGroup) (GroupSnapshot, error) {
	key, err := ParseGroupKey(enc)
	if err != nil {
		return GroupSnapshot{}, fmt.Errorf("%w: %w", ErrInvalidGroup, err)
	}
	fams := make([]FamilySnapshot, 0, len(fg.Metrics))
	for name, ff := range fg.Metrics {
		mf, err := familyFromFile(name, ff)
		if err != nil {
			return GroupSnapshot{}, fmt.Errorf("%w: group %q: %w", ErrInvalidGroup, enc, err)
		}
		fams = append(fams, FamilySnapshot{Family: mf, Time: ff.Timestamp})
	}
	sortFamilySnapshots(fams)
	return GroupSnapshot{Key: key, Families: fams, Version: fg.Version, Deadline: fg.Deadline}, nil
}

// familyFromFile checks one family of the file. The Pushgateway writes the
// family name both as the map key and inside the protobuf; a file where they
// differ (or the family is missing) was not written by it or by us.
func familyFromFile(name string, ff fileFamily) (*dto.MetricFamily, error) {
	if ff.GobbableMetricFamily == nil || ff.GobbableMetricFamily.mf == nil {
		return nil, fmt.Errorf("family %q has no data", name)
	}
	mf := ff.GobbableMetricFamily.mf
	if mf.GetName() != name {
		return nil, fmt.Errorf("family stored under %q is named %q", name, mf.GetName())
	}
	return mf, nil
}

func sortFamilySnapshots(fams []FamilySnapshot) {
	sort.Slice(fams, func(i, j int) bool { return fams[i].Family.GetName() < fams[j].Family.GetName() })
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open persistence directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync persistence directory: %w", err)
	}
	return nil
}
