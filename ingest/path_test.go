package ingest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

func TestParseGroupingPath(t *testing.T) {
	tests := []struct {
		name string
		path string
		want map[string]string
	}{
		// Plain paths and percent escapes.
		{"job only", "/job/batch", map[string]string{"job": "batch"}},
		{"two labels", "/job/j/a/1/b/2", map[string]string{"job": "j", "a": "1", "b": "2"}},
		{"label order does not matter", "/job/j/b/2/a/1", map[string]string{"job": "j", "a": "1", "b": "2"}},
		{"greek percent escapes", "/job/titan/name/%CE%A0%CF%81", map[string]string{"job": "titan", "name": "Πρ"}},
		{"plus stays literal", "/job/j/sp/a+b%2Bc", map[string]string{"job": "j", "sp": "a+b+c"}},
		{"percent-encoded space", "/job/j/sp/a%20b", map[string]string{"job": "j", "sp": "a b"}},
		{"escaped slash stays in value", "/job/j/path/%2Fvar%2Ftmp", map[string]string{"job": "j", "path": "/var/tmp"}},
		{"escaped slash in job", "/job/a%2Fb", map[string]string{"job": "a/b"}},
		{"escaped route name", "/jo%62/x", map[string]string{"job": "x"}},
		{"escaped label name", "/job/j/%61/1", map[string]string{"job": "j", "a": "1"}},
		{"repeated label last wins", "/job/j/a/1/a/2", map[string]string{"job": "j", "a": "2"}},
		{"job label overwritten by url job", "/job/jj/job/x", map[string]string{"job": "jj"}},
		{"utf8 escaped name is literal", "/job/j/U__foo_2e_bar/v", map[string]string{"job": "j", "U__foo_2e_bar": "v"}},
		{"underscore name", "/job/j/_a/v", map[string]string{"job": "j", "_a": "v"}},
		// base64.
		{"base64 unpadded", "/job/j/p@base64/L3Zhci90bXA", map[string]string{"job": "j", "p": "/var/tmp"}},
		{"base64 padded", "/job/j/p@base64/L3Zhci90bXA=", map[string]string{"job": "j", "p": "/var/tmp"}},
		{"base64 over-padded", "/job/j/p@base64/L3Zhci90bXA===", map[string]string{"job": "j", "p": "/var/tmp"}},
		{"base64 non-zero trailing bits", "/job/j/p@base64/L3Zhci90bXB", map[string]string{"job": "j", "p": "/var/tmp"}},
		{"base64 url alphabet", "/job/j/p@base64/Pj4-Pz4_", map[string]string{"job": "j", "p": ">>>?>?"}},
		{"base64 single equals is empty", "/job/j/e@base64/=", map[string]string{"job": "j", "e": ""}},
		{"base64 double equals is empty", "/job/j/e@base64/==", map[string]string{"job": "j", "e": ""}},
		{"base64 escaped equals is empty", "/job/j/e@base64/%3D", map[string]string{"job": "j", "e": ""}},
		{"base64 empty value", "/job/j/e@base64/", map[string]string{"job": "j", "e": ""}},
		{"job base64", "/job@base64/L3Zhci90bXA", map[string]string{"job": "/var/tmp"}},
		{"job base64 with labels", "/job@base64/L3Zhci90bXA/instance@base64/bm9kZS9hIGI", map[string]string{"job": "/var/tmp", "instance": "node/a b"}},
		{"go client grouping", "/job/connected_node_count/sp/a+b%2Bc/instance@base64/bm9kZS9hIGI/empty@base64/=",
			map[string]string{"job": "connected_node_count", "sp": "a+b+c", "instance": "node/a b", "empty": ""}},
		{"ui delete url", "/job@base64/YmF0Y2g=/instance@base64/aG9zdA==", map[string]string{"job": "batch", "instance": "host"}},
		// Empty values and trailing slashes.
		{"trailing slash", "/job/j2/", map[string]string{"job": "j2"}},
		{"trailing slash after name is empty value", "/job/j2/a/", map[string]string{"job": "j2", "a": ""}},
		{"empty value in the middle", "/job/j2/a//b/2", map[string]string{"job": "j2", "a": "", "b": "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGroupingPath(tt.path)
			require.NoError(t, err)
			require.Equal(t, store.NewGroupKey(tt.want), got)
		})
	}
}

func TestParseGroupingPathErrors(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		sentinel error
		want     string // the whole error text: the 400 body
	}{
		// Not a push route: 404.
		{"empty", "", ErrNotFound, "404 page not found"},
		{"root", "/", ErrNotFound, "404 page not found"},
		{"job without slash", "/job", ErrNotFound, "404 page not found"},
		{"job base64 without slash", "/job@base64", ErrNotFound, "404 page not found"},
		{"other route", "/jobs/x", ErrNotFound, "404 page not found"},
		{"no leading slash", "job/x", ErrNotFound, "404 page not found"},
		{"route suffix twice", "/job@base64@base64/eA", ErrNotFound, "404 page not found"},
		// Components and names.
		{"odd single", "/job/j2/a", ErrBadRequest, `odd number of components in label string "/a"`},
		{"odd with trailing slash", "/job/j2/a/b/", ErrBadRequest, `odd number of components in label string "/a/b/"`},
		{"odd printed decoded", "/job/j/a%2Fb", ErrBadRequest, `odd number of components in label string "/a/b"`},
		{"escaped slash in name", "/job/j/a%2Fb/c", ErrBadRequest, `improper label name "a/b"`},
		{"base64 suffix trimmed once", "/job/j/a@base64@base64/YQ", ErrBadRequest, `improper label name "a@base64"`},
		{"reserved name", "/job/j/__a/v", ErrBadRequest, `improper label name "__a"`},
		{"reserved name base64", "/job/j/__a@base64/YQ", ErrBadRequest, `improper label name "__a"`},
		{"leading digit", "/job/j/1a/v", ErrBadRequest, `improper label name "1a"`},
		{"dash", "/job/j/a-b/v", ErrBadRequest, `improper label name "a-b"`},
		{"dot", "/job/j/a.b/v", ErrBadRequest, `improper label name "a.b"`},
		{"empty name base64", "/job/j/@base64/YQ", ErrBadRequest, `improper label name ""`},
		{"empty name", "/job/j//v", ErrBadRequest, `improper label name ""`},
		{"escaped bad name", "/job/j/a%2Db/v", ErrBadRequest, `improper label name "a-b"`},
		// base64 errors.
		{"base64 bang", "/job/j/a@base64/!!!", ErrBadRequest, `invalid base64 encoding for label a="!!!": illegal base64 data at input byte 0`},
		{"base64 plus rejected", "/job/j/x@base64/L3Zhci+0bXA", ErrBadRequest, `invalid base64 encoding for label x="L3Zhci+0bXA": illegal base64 data at input byte 6`},
		{"base64 escaped slash rejected", "/job/j/x@base64/L3Zhci%2F0bXA", ErrBadRequest, `invalid base64 encoding for label x="L3Zhci/0bXA": illegal base64 data at input byte 6`},
		{"base64 raw slash splits the path", "/job/j/x@base64/L3Zhci/0bXA", ErrBadRequest, `odd number of components in label string "/x@base64/L3Zhci/0bXA"`},
		{"base64 padding inside", "/job/j/x@base64/YQ=YQ", ErrBadRequest, `invalid base64 encoding for label x="YQ=YQ": illegal base64 data at input byte 2`},
		{"base64 job label still decoded", "/job/j/job@base64/!", ErrBadRequest, `invalid base64 encoding for label job="!": illegal base64 data at input byte 0`},
		{"job base64 bang", "/job@base64/!!!", ErrBadRequest, `invalid base64 encoding in job name "": illegal base64 data at input byte 0`},
		{"job base64 partial decode printed", "/job@base64/YWJj!!", ErrBadRequest, `invalid base64 encoding in job name "abc": illegal base64 data at input byte 4`},
		{"job base64 before labels", "/job@base64/!/a", ErrBadRequest, `invalid base64 encoding in job name "": illegal base64 data at input byte 0`},
		// Empty job.
		{"job base64 equals", "/job@base64/=", ErrBadRequest, "job name is required"},
		{"job base64 empty", "/job@base64/", ErrBadRequest, "job name is required"},
		{"job empty", "/job/", ErrBadRequest, "job name is required"},
		{"job empty with labels", "/job//a/b", ErrBadRequest, "job name is required"},
		{"labels checked before empty job", "/job//a", ErrBadRequest, `odd number of components in label string "/a"`},
		// Escapes the URL parser would reject.
		{"bad escape in value", "/job/j/a/%zz", ErrBadRequest, `invalid URL escape "%zz"`},
		{"bad escape in job", "/job/%4", ErrBadRequest, `invalid URL escape "%4"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGroupingPath(tt.path)
			require.ErrorIs(t, err, tt.sentinel)
			require.EqualError(t, err, tt.want)
			require.True(t, got.IsZero())
		})
	}
}

// Values that are not UTF-8 would poison a Pushgateway (every later scrape fails) and could
// carry 0xFF, the key separator; they are refused with the prefix of the
// Pushgateway's consistency error.
func TestParseGroupingPathInvalidUTF8(t *testing.T) {
	tests := []struct {
		name, path, label string
	}{
		{"escaped byte", "/job/j/x/%FF", "x"},
		{"base64 value", "/job/j/x@base64/L3Zhci_0bXA", "x"},
		{"job", "/job/%C3", "job"},
		{"job base64", "/job@base64/_w", "job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGroupingPath(tt.path)
			require.ErrorIs(t, err, ErrBadRequest)
			require.ErrorIs(t, err, store.ErrInconsistent)
			require.ErrorContains(t, err, "pushed metrics are invalid or inconsistent with existing metrics: grouping label \""+tt.label+"\"")
			require.Equal(t, 400, statusOf(err))
		})
	}
}

// TestParseGroupingPathUTF8Names covers --push.enable-utf8-names: U__
// label names are unescaped (also before @base64), other UTF-8 names are
// taken as they are, and the legacy rules still hold for "__".
func TestParseGroupingPathUTF8Names(t *testing.T) {
	ok := []struct {
		name, path string
		want       map[string]string
	}{
		{"U__ name", "/job/j/U__foo_2e_bar/v", map[string]string{"job": "j", "foo.bar": "v"}},
		{"U__ name with base64", "/job/j/U__foo_2e_bar@base64/L3Zhci90bXA", map[string]string{"job": "j", "foo.bar": "/var/tmp"}},
		{"percent-encoded UTF-8 name", "/job/j/%C3%A9t%C3%A9/v", map[string]string{"job": "j", "été": "v"}},
		{"legacy name", "/job/j/a/1", map[string]string{"job": "j", "a": "1"}},
		{"U__ of a legacy name", "/job/j/U__a/1", map[string]string{"job": "j", "a": "1"}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			k, err := parseGroupingPath(c.path, true)
			require.NoError(t, err)
			got := map[string]string{}
			for _, l := range k.Labels() {
				got[l.Name] = l.Value
			}
			require.Equal(t, c.want, got)
		})
	}
	for _, path := range []string{"/job/j/__x/1", "/job/j/__x@base64/MQ"} {
		_, err := parseGroupingPath(path, true)
		require.ErrorIs(t, err, ErrBadRequest, path)
	}
	// Without the flag a U__ name is a literal legacy name.
	k, err := parseGroupingPath("/job/j/U__foo_2e_bar/v", false)
	require.NoError(t, err)
	require.Equal(t, "U__foo_2e_bar", k.Labels()[0].Name)
	_, err = parseGroupingPath("/job/j/%C3%A9t%C3%A9/v", false)
	require.ErrorIs(t, err, ErrBadRequest)
}
