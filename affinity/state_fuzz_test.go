package affinity

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// errOffline is what an offline client answers to every command.
var errOffline = errors.New("offline: no Redis in this test")

// refuseAll is a redis.Limiter that lets no command through: a client
// with it fails at once, without dialling.
type refuseAll struct{}

func (refuseAll) Allow() error       { return errOffline }
func (refuseAll) ReportResult(error) {}

// offlineStore returns a store of members whose Redis is never reached:
// for the fuzz targets, which must not need a server.
func offlineStore(t testing.TB, members []Member, vnodes int) *Store {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", Limiter: refuseAll{}, MaxRetries: -1, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	t.Cleanup(func() { c.Close() })
	s, err := New(Config{Client: c, Pool: "fuzz", Members: members, Instance: "fuzz", VNodes: vnodes})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stateAnswer builds scriptState's answer from lines: loads "name=count"
// (a count that is not an integer stays a string, a wrong type), weight
// overrides "name=value" as stored by any instance, down members one per
// line; shape%8 < 3 drops parts, shape%8 == 3 gives a part of the wrong
// type.
func stateAnswer(loads, weights, down string, shape uint8) []interface{} {
	pairs := func(s string, typed bool) []interface{} {
		out := []interface{}{}
		for _, l := range strings.Split(s, "\n") {
			if l == "" {
				continue
			}
			name, v, _ := strings.Cut(l, "=")
			out = append(out, name)
			if n, err := strconv.ParseInt(v, 10, 64); typed && err == nil {
				out = append(out, n)
			} else {
				out = append(out, v)
			}
		}
		return out
	}
	var downs []interface{}
	for _, d := range strings.Split(down, "\n") {
		if d != "" {
			downs = append(downs, d)
		}
	}
	res := []interface{}{pairs(loads, true), pairs(weights, false), downs}
	switch shape % 8 {
	case 0, 1, 2:
		return res[:shape%8]
	case 3:
		res[1] = "weights"
	}
	return res
}

// FuzzPoolState: whatever the instances wrote (loads, weight overrides,
// health), the state read back holds only weights from 0 to MaxWeight
// taken from a stored decimal value of that member, the loads and down
// members as written, and the ring built from it gives each member its
// override or its configured weight; an answer of another shape is an
// error.
func FuzzPoolState(f *testing.F) {
	f.Add("m1=3\nm2=0", "m2=0", "m3", uint8(4))
	f.Add("m1=1\nm3=-2", "m1=2\nm2=1000\nm3=-1", "", uint8(4))
	f.Add("m1=x\n=4", "m1=1001\nm2=99999999999\nm3=1e3\nm1= 5", "m1\nm2\nm9", uint8(4))
	f.Add("m1=1", "m2=2", "m3", uint8(1))
	f.Add("m1=1", "m2=2", "m3", uint8(3))
	members := []Member{{"m1", 1}, {"m2", 2}, {"m3", 0}}
	s := offlineStore(f, members, 1) // a small ring: it is rebuilt for most inputs
	f.Fuzz(func(t *testing.T, loads, weights, down string, shape uint8) {
		res := stateAnswer(loads, weights, down, shape)
		st, err := parseState(res)
		if len(res) != 3 {
			if err == nil || !strings.Contains(err.Error(), "want 3") {
				t.Fatalf("%d parts: %v", len(res), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%v: %v", res, err)
		}
		stored := map[string][]string{}
		if ws, ok := res[1].([]interface{}); ok {
			for i := 0; i+1 < len(ws); i += 2 {
				stored[ws[i].(string)] = append(stored[ws[i].(string)], ws[i+1].(string))
			}
		}
		for name, w := range st.weights {
			if w < 0 || w > MaxWeight || !slices.ContainsFunc(stored[name], func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n == w }) {
				t.Fatalf("weight %q=%d read from %q", name, w, stored[name])
			}
		}
		for name, vs := range stored {
			if _, ok := st.weights[name]; len(vs) == 1 && !ok {
				if n, err := strconv.Atoi(vs[0]); err == nil && n >= 0 && n <= MaxWeight {
					t.Fatalf("weight %q=%q left out", name, vs[0])
				}
			}
		}
		wantLoads := map[string]int{}
		ls := res[0].([]interface{})
		for i := 0; i+1 < len(ls); i += 2 {
			n, _ := ls[i+1].(int64) // a count of another type is none
			wantLoads[ls[i].(string)] = int(n)
		}
		if !maps.Equal(st.loads, wantLoads) {
			t.Fatalf("loads %v read as %v", ls, st.loads)
		}
		wantDown := map[string]bool{}
		for _, d := range res[2].([]interface{}) {
			wantDown[d.(string)] = true
		}
		if !maps.Equal(st.down, wantDown) {
			t.Fatalf("down %v read as %v", res[2], st.down)
		}
		ring := s.ringFor(st.weights)
		for i, m := range ring.Members() {
			want := members[i].Weight
			if w, ok := st.weights[m.Name]; ok {
				want = w
			}
			if m.Name != members[i].Name || m.Weight != want {
				t.Fatalf("ring member %+v, want %s weight %d", m, members[i].Name, want)
			}
		}
	})
}
