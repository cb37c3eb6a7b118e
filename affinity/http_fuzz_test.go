package affinity

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fuzzRoutes are the admin API's endpoints, by the fuzz targets' index.
var fuzzRoutes = []struct{ method, path string }{
	{"GET", "/affinity"},
	{"GET", "/affinity/pools"},
	{"POST", "/affinity/move"},
	{"POST", "/affinity/weight"},
	{"POST", "/affinity/evacuate"},
}

// FuzzHandler: whatever the request's query and body, the admin API
// answers JSON, never 500: bad input is 400 naming the field at fault
// (or a body that is not one JSON object of the fields, naming none),
// unknown pools and members 404; and a request it passes on to the store
// (which, offline, answers 503) is exactly one JSON object whose fields
// are all there and in range: a user, known members, a weight from -1 to
// MaxWeight.
func FuzzHandler(f *testing.F) {
	members := []Member{{"m1", 1}, {"m2", 2}}
	one := Handler(map[string]*Store{"shared": offlineStore(f, members, 0)})
	two := Handler(map[string]*Store{"shared": offlineStore(f, members, 0), "other": offlineStore(f, members, 0)})
	for i, s := range []struct{ query, body string }{
		{"user=alice", ""},
		{"pool=shared&user=alice", ""},
		{"pool=nope", ""},
		{"", `{"user":"alice","to":"m2"}`},
		{"", `{"pool":"shared","member":"m1","weight":0}`},
		{"", `{"member":"m1","weight":-1}`},
		{"", `{"member":"m1","weight":1000}`},
		{"", `{"member":"m1","weight":1001}`},
		{"", `{"member":"m1","weight":0} {"weight":5}`},
		{"", `{"member":"m1","weight":-2}`},
		{"", `{"member":"m3","weight":1}`},
		{"", `{"member":"m1"}`},
		{"", `{"member":"m1","weight":1.5}`},
		{"", `{"member":"m1","weight":1,"extra":true}`},
		{"", `{"member":"m2"}`},
		{"", `{"user":"","to":"m1"}`},
		{"", `null`},
		{"", `[`},
	} {
		for route := range fuzzRoutes {
			if i < 3 && route < 2 || i >= 3 && route >= 2 {
				f.Add(uint8(route), s.query, []byte(s.body))
				f.Add(uint8(route+len(fuzzRoutes)), s.query, []byte(s.body))
			}
		}
	}
	f.Fuzz(func(t *testing.T, sel uint8, query string, body []byte) {
		if len(body) > 4<<10 { // the limit is 64 KiB; long inputs are slow to minimize
			return
		}
		rt := fuzzRoutes[int(sel)%len(fuzzRoutes)]
		pools, h := 1, one
		if int(sel)/len(fuzzRoutes)%2 == 1 {
			pools, h = 2, two
		}
		r := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if ct := w.Header().Get("Content-Type"); ct != "application/json" || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s?%s %q: %d %q answer %q", rt.method, rt.path, query, body, w.Code, ct, w.Body)
		}
		var ans APIError
		if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Error == "" {
			t.Fatalf("%s %s?%s %q: %d %s: not an error answer (%v)", rt.method, rt.path, query, body, w.Code, w.Body, err)
		}
		fail := func(why string) {
			t.Helper()
			t.Fatalf("%s %s?%s %q (%d pools): %d %s: %s", rt.method, rt.path, query, body, pools, w.Code, w.Body, why)
		}

		// What the request says, read strictly and independently: each
		// endpoint's fields only, one JSON value and nothing after it.
		q := r.URL.Query()
		var req struct {
			Pool, User, To, Member string
			Weight                 *int
		}
		bodyOK := rt.method == "GET"
		if !bodyOK {
			var fields any
			switch rt.path {
			case "/affinity/move":
				fields = &struct{ Pool, User, To *string }{&req.Pool, &req.User, &req.To}
			case "/affinity/weight":
				fields = &struct {
					Pool, Member *string
					Weight       **int
				}{&req.Pool, &req.Member, &req.Weight}
			default:
				fields = &struct{ Pool, Member *string }{&req.Pool, &req.Member}
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			bodyOK = dec.Decode(fields) == nil && json.Valid(body)
		}
		pool := q.Get("pool")
		if rt.method == "POST" {
			pool = req.Pool
		}
		poolOK := pool == "shared" || pool == "other" && pools == 2 || pool == "" && pools == 1
		known := func(m string) bool { return slices.ContainsFunc(members, func(x Member) bool { return x.Name == m }) }
		var fieldsOK bool
		switch rt.path {
		case "/affinity":
			fieldsOK = q.Get("user") != ""
		case "/affinity/pools":
			fieldsOK = q.Get("pool") == "" || q.Get("pool") == "shared" || q.Get("pool") == "other" && pools == 2
			poolOK = true
		case "/affinity/move":
			fieldsOK = req.User != "" && (req.To == "" || known(req.To))
		case "/affinity/weight":
			fieldsOK = known(req.Member) && req.Weight != nil && *req.Weight >= -1 && *req.Weight <= MaxWeight
		case "/affinity/evacuate":
			fieldsOK = known(req.Member)
		}

		switch w.Code {
		case http.StatusServiceUnavailable: // passed on to the store
			if !bodyOK || !poolOK || !fieldsOK {
				fail("passed on to the store")
			}
			if !strings.Contains(ans.Error, errOffline.Error()) {
				fail("not the store's error")
			}
		case http.StatusBadRequest, http.StatusNotFound:
			if bodyOK && poolOK && fieldsOK {
				fail("refused")
			}
			if ans.Field == "" && !strings.HasPrefix(ans.Error, "request body: ") ||
				!slices.Contains([]string{"", "pool", "user", "to", "member", "weight"}, ans.Field) {
				fail("does not name the field")
			}
		default:
			fail("unexpected status")
		}
	})
}
