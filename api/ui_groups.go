package api

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/pushring/pushring/store"
)

// Paging of the groups page.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
	// previewSeries is how many series of a group the groups page shows;
	// the group's page shows all of them.
	previewSeries = 50
)

// groupsData is the groups page.
type groupsData struct {
	uiBase
	Match, Query string
	ClusterScope bool
	Limit        int
	MaxLimit     int
	Err          string
	Missing      []string // peers that did not answer, with why
	Total        int      // groups looked at
	Matched      int      // of which matched the filter
	From, To     int      // 1-based positions of the page's groups
	Page, Pages  int
	PrevURL      string
	NextURL      string
	Jobs         []jobSection
}

// jobSection is the groups of one job on the page.
type jobSection struct {
	Job    string
	Groups []groupRow
}

// groupRow is one group of the groups page, or the head of its own page.
type groupRow struct {
	Labels      []store.Label
	KeyText     string
	URL         string   // its page
	DeleteURL   string   // the Pushgateway's DELETE URL of the group
	After       string   // where the browser goes after a delete; "" stays
	Peer        string   // the peer whose copy is shown (cluster scope)
	Replicas    []string // the other peers that hold a copy (cluster scope)
	Families    int      // pushed families, without the gateway's time gauges
	Series      int
	LastPush    string
	Failed      bool
	FailureTime string
	Expires     string
	Fams        []familyView
}

// groupsQuery is what the groups page was asked for.
type groupsQuery struct {
	match, text  string
	cluster      bool
	page, limit  int
	filter       groupFilter
	filterErr    error
	limitInvalid bool
}

func parseGroupsQuery(r *http.Request) groupsQuery {
	q := r.URL.Query()
	gq := groupsQuery{match: q.Get("match"), text: q.Get("q"), cluster: q.Get("scope") == "cluster", page: 1, limit: defaultPageSize}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		gq.page = v
	}
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxPageSize {
			gq.limitInvalid = true
		} else {
			gq.limit = v
		}
	}
	gq.filter, gq.filterErr = parseFilter(gq.match, gq.text)
	return gq
}

// url is the groups page of the same query at page p.
func (gq groupsQuery) url(prefix string, p int) string {
	v := url.Values{}
	if gq.match != "" {
		v.Set("match", gq.match)
	}
	if gq.text != "" {
		v.Set("q", gq.text)
	}
	if gq.cluster {
		v.Set("scope", "cluster")
	}
	if gq.limit != defaultPageSize {
		v.Set("limit", strconv.Itoa(gq.limit))
	}
	if p > 1 {
		v.Set("page", strconv.Itoa(p))
	}
	if len(v) == 0 {
		return prefix + "/"
	}
	return prefix + "/?" + v.Encode()
}

// groupsPage serves the groups list: this peer's groups (read one batch
// at a time, so 200,000 groups cost a list of keys, not a copy of the
// store) or, with scope=cluster, every peer's. Only the groups of the
// page are decoded.
func (a *API) groupsPage(w http.ResponseWriter, r *http.Request) error {
	gq := parseGroupsQuery(r)
	d := groupsData{uiBase: a.uiBase(r, "Groups", "groups"), Match: gq.match, Query: gq.text,
		ClusterScope: gq.cluster, Limit: gq.limit, MaxLimit: maxPageSize, Page: gq.page}
	code := http.StatusOK
	switch {
	case gq.filterErr != nil:
		d.Err, code = gq.filterErr.Error(), http.StatusBadRequest
		return a.render(w, code, "groups", d)
	case gq.limitInvalid:
		d.Err, code = "invalid limit: the page size must be a number from 1 to "+strconv.Itoa(maxPageSize), http.StatusBadRequest
		return a.render(w, code, "groups", d)
	}
	first := (gq.page - 1) * gq.limit
	var rows []groupRow
	if gq.cluster {
		if !a.acquireView(w) {
			return errViewsBusy
		}
		defer a.releaseView()
		rows, d.Total, d.Matched, d.Missing = a.clusterRows(r, gq, first)
	} else {
		rows, d.Total, d.Matched = a.peerRows(gq, first)
	}
	d.Pages = max(1, (d.Matched+gq.limit-1)/gq.limit)
	if len(rows) > 0 {
		d.From, d.To = first+1, first+len(rows)
	}
	if gq.page > 1 {
		d.PrevURL = gq.url(a.extern, min(gq.page-1, d.Pages))
	}
	if first+gq.limit < d.Matched {
		d.NextURL = gq.url(a.extern, gq.page+1)
	}
	for _, row := range rows {
		job := jobOf(row.Labels)
		if n := len(d.Jobs); n == 0 || d.Jobs[n-1].Job != job {
			d.Jobs = append(d.Jobs, jobSection{Job: job})
		}
		s := &d.Jobs[len(d.Jobs)-1]
		s.Groups = append(s.Groups, row)
	}
	return a.render(w, code, "groups", d)
}

// peerRows returns the rows of the page that starts at the first-th
// matching group of this peer, how many groups the peer holds and how
// many match.
func (a *API) peerRows(gq groupsQuery, first int) (rows []groupRow, total, matched int) {
	var keys []store.GroupSummary
	a.store.RangeSummaries(func(g store.GroupSummary) bool {
		total++
		if !gq.filter.all() && !gq.filter.matches(g.Key.Labels()) {
			return true
		}
		if matched >= first && matched < first+gq.limit {
			keys = append(keys, g)
		}
		matched++
		return true
	})
	now := time.Now()
	for _, sum := range keys {
		gs, ok := a.store.Group(sum.Key)
		if !ok {
			continue // deleted meanwhile
		}
		row := a.groupRow(store.SummaryOf(gs), "", now, "")
		row.URL = a.groupURL(gs.Key, "")
		row.Fams = familyViews(gs, row.URL, previewSeries)
		rows = append(rows, row)
	}
	return rows, total, matched
}

// peerGroup is one group, the peer whose copy is shown and the other
// peers that hold a copy.
type peerGroup struct {
	peer   string
	others []string
	g      store.GroupSnapshot
	job    string
}

// clusterRows is peerRows over the groups of every peer. A group several
// peers hold (its replicas, or during a hand-off) is listed once: with
// the peer that owns it in the current placement if that peer answered
// with it, else with the holder of its newest version; the other holders
// are listed beside it.
func (a *API) clusterRows(r *http.Request, gq groupsQuery, first int) (rows []groupRow, total, matched int, missing []string) {
	byKey := map[store.GroupKey]*peerGroup{}
	seen := map[store.GroupKey]bool{}
	for _, pg := range a.cluster.GroupsByPeer(r.Context()) {
		if pg.Err != "" {
			missing = append(missing, "peer "+strconv.Quote(pg.Peer)+": "+pg.Err)
		}
		for _, g := range pg.Groups {
			seen[g.Key] = true
			if !gq.filter.all() && !gq.filter.matches(g.Key.Labels()) {
				continue
			}
			if cur := byKey[g.Key]; cur != nil {
				cur.add(pg.Peer, g, a.cluster.Locate(g.Key).Owner)
				continue
			}
			job, _ := g.Key.Get("job")
			byKey[g.Key] = &peerGroup{peer: pg.Peer, g: g, job: job}
		}
	}
	all := make([]*peerGroup, 0, len(byKey))
	for _, pg := range byKey {
		all = append(all, pg)
	}
	slices.SortFunc(all, func(x, y *peerGroup) int {
		return cmp.Or(strings.Compare(x.job, y.job), strings.Compare(x.g.Key.String(), y.g.Key.String()))
	})
	total, matched = len(seen), len(all)
	now := time.Now()
	for _, pg := range all[min(first, len(all)):min(first+gq.limit, len(all))] {
		row := a.groupRow(store.SummaryOf(pg.g), pg.peer, now, "")
		slices.Sort(pg.others)
		row.Replicas = pg.others
		row.URL = a.groupURL(pg.g.Key, pg.peer)
		row.Fams = familyViews(pg.g, row.URL, previewSeries)
		rows = append(rows, row)
	}
	return rows, total, matched, missing
}

// add records that peer holds g too; the owner's copy, else the newest,
// is the one shown.
func (pg *peerGroup) add(peer string, g store.GroupSnapshot, owner string) {
	if peer == owner || (pg.peer != owner && g.Version > pg.g.Version) {
		pg.others = append(pg.others, pg.peer)
		pg.peer, pg.g = peer, g
		return
	}
	pg.others = append(pg.others, peer)
}

// groupRow is the head of a group's row or page.
func (a *API) groupRow(sum store.GroupSummary, peer string, now time.Time, after string) groupRow {
	row := groupRow{
		Labels:    jobFirst(sum.Key.Labels()),
		KeyText:   keyText(sum.Key),
		DeleteURL: a.extern + deletePath(sum.Key),
		After:     after,
		Peer:      peer,
		Families:  sum.Families,
		Series:    sum.Series,
		LastPush:  "never",
		Failed:    !sum.LastPushSuccessful(),
		Expires:   "never",
	}
	if t, ok := unixTime(sum.PushTime); ok {
		row.LastPush = whenText(t, now)
	}
	if t, ok := unixTime(sum.FailureTime); ok && row.Failed {
		row.FailureTime = whenText(t, now)
	}
	if !sum.Deadline.IsZero() {
		row.Expires = whenText(sum.Deadline, now)
	}
	return row
}

func jobOf(ls []store.Label) string {
	for _, l := range ls {
		if l.Name == "job" {
			return l.Value
		}
	}
	return ""
}

// groupURL is the page of group k; peer, if set, names the peer whose
// copy it shows, for the cluster scope.
func (a *API) groupURL(k store.GroupKey, peer string) string {
	v := url.Values{"key": {base64.RawURLEncoding.EncodeToString([]byte(k.String()))}}
	if peer != "" {
		v.Set("peer", peer)
	}
	return a.extern + "/group?" + v.Encode()
}

// plainSegment is a label value that stays readable in a push path.
var plainSegment = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// deletePath is the Pushgateway's path of group k:
// /metrics/job/<job>/<name>/<value>..., each value that is empty or holds
// other than plain characters base64url-encoded (name@base64/value), each
// name that is not a legacy name U__-escaped as --push.enable-utf8-names
// reads it.
func deletePath(k store.GroupKey) string {
	var b strings.Builder
	b.WriteString("/metrics")
	for _, l := range jobFirst(k.Labels()) {
		name := l.Name
		if !model.LegacyValidation.IsValidLabelName(name) {
			name = model.EscapeName(name, model.ValueEncodingEscaping)
		}
		b.WriteByte('/')
		if plainSegment.MatchString(l.Value) {
			b.WriteString(name + "/" + l.Value)
			continue
		}
		v := base64.URLEncoding.EncodeToString([]byte(l.Value))
		if v == "" {
			v = "=" // the Pushgateway's empty value
		}
		b.WriteString(name + "@base64/" + v)
	}
	return b.String()
}

// groupData is a group's page.
type groupData struct {
	uiBase
	groupRow
	BackURL string
}

// groupPage serves one group with every family and series. The group is
// this peer's, or with peer=<id> that peer's copy, fetched from every peer
// like the cluster scope of the groups page.
func (a *API) groupPage(w http.ResponseWriter, r *http.Request) error {
	enc, err := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("key"))
	if err != nil {
		return &statusError{code: http.StatusBadRequest, text: "invalid group key in the URL: open groups from the groups page"}
	}
	k, err := store.ParseGroupKey(string(enc))
	if err != nil || k.IsZero() {
		return &statusError{code: http.StatusBadRequest, text: "invalid group key in the URL: open groups from the groups page"}
	}
	peer := r.URL.Query().Get("peer")
	gs, found, err := a.findGroup(w, r, k, peer)
	if err != nil {
		return err
	}
	back := a.extern + "/"
	if peer != "" {
		back += "?scope=cluster"
	}
	if !found {
		return &statusError{code: http.StatusNotFound, text: "no group " + keyText(k) + " here: it was deleted, expired, or is held by another peer (open it from the groups page of the whole cluster)"}
	}
	d := groupData{uiBase: a.uiBase(r, keyText(k), "groups"), BackURL: back}
	d.groupRow = a.groupRow(store.SummaryOf(gs), peer, time.Now(), back)
	d.Fams = familyViews(gs, "", 0)
	return a.render(w, http.StatusOK, "group", d)
}

// findGroup returns group k of this peer, or of peer if that is another.
func (a *API) findGroup(w http.ResponseWriter, r *http.Request, k store.GroupKey, peer string) (store.GroupSnapshot, bool, error) {
	if peer == "" || peer == a.cluster.Status(r.Context(), false).Self {
		gs, ok := a.store.Group(k)
		return gs, ok, nil
	}
	if !a.acquireView(w) {
		return store.GroupSnapshot{}, false, errViewsBusy
	}
	defer a.releaseView()
	for _, pg := range a.cluster.GroupsByPeer(r.Context()) {
		if pg.Peer != peer {
			continue
		}
		if pg.Err != "" {
			return store.GroupSnapshot{}, false, &statusError{code: http.StatusServiceUnavailable, text: "peer " + strconv.Quote(peer) + " did not answer: " + pg.Err}
		}
		for _, g := range pg.Groups {
			if g.Key == k {
				return g, true, nil
			}
		}
	}
	return store.GroupSnapshot{}, false, nil
}
