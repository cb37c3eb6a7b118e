package affinity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/admin"
)

// answerTransport answers every request with a fixed status, content
// type and body: the admin API as the client may find it (or a proxy in
// its place).
type answerTransport struct {
	code  int
	ctype string
	body  []byte
}

func (a answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	h := http.Header{}
	if a.ctype != "" {
		h.Set("Content-Type", a.ctype)
	}
	return &http.Response{StatusCode: a.code, Status: fmt.Sprintf("%d %s", a.code, http.StatusText(a.code)),
		Header: h, Body: io.NopCloser(bytes.NewReader(a.body)), Request: req}, nil
}

// clientCall runs the Client method sel on c and returns its result.
func clientCall(c *Client, sel uint8) (any, error) {
	ctx := context.Background()
	switch sel % 5 {
	case 0:
		return c.User(ctx, "", "alice")
	case 1:
		return c.Pools(ctx, "shared")
	case 2:
		return c.Move(ctx, "shared", "alice", "m2")
	case 3:
		return c.SetWeight(ctx, "", "m1", 0)
	default:
		return c.Evacuate(ctx, "", "m1")
	}
}

// FuzzClientAnswer: whatever an answer holds, the client returns a JSON
// 200 answer decoded as encoding/json does (and passed to OnAnswer), and
// encoded again by the API's writer it decodes the same; another JSON
// answer is a *StatusError with the status and the API's error; any
// other answer or a body that does not decode is an error naming the
// status or the reason. OnAnswer sees only JSON answers.
func FuzzClientAnswer(f *testing.F) {
	answer := func(v any) []byte {
		w := httptest.NewRecorder()
		admin.WriteJSON(w, http.StatusOK, v)
		return w.Body.Bytes()
	}
	exp := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)
	seeds := [][]byte{
		answer(UserInfo{Pool: "shared", User: "alice", Member: "m1", Sessions: map[string]int{"gw1.1": 2}}),
		answer(UserInfo{Pool: "shared", User: "bob", Member: "m2", TTL: "14m59.5s", Expires: exp}),
		answer([]PoolInfo{{Pool: "shared", Members: []MemberInfo{{Name: "m1", Weight: 1, ConfiguredWeight: 1, Up: true, Sessions: 3, Users: 2,
			Health: MemberHealth{Up: true, OKs: 3, Checked: exp}}}}}),
		answer(MoveInfo{Pool: "shared", User: "alice", From: "m1", To: "m2", Instances: 2, Confirmed: 1, TimedOut: true}),
		answer(WeightInfo{Pool: "shared", Member: "m1", Weight: 0, ConfiguredWeight: 1}),
		answer(EvacuateInfo{Pool: "shared", Member: "m1", Moved: []MoveInfo{{User: "a", From: "m1", To: "m2"}}, Error: "1 move failed"}),
		answer(APIError{Error: `pool "shared" has no member "m9"`, Field: "member"}),
	}
	for i, b := range seeds {
		f.Add(uint8(i), uint16(200), "application/json", b)
		f.Add(uint8(i), uint16(404), "application/json", b)
	}
	f.Add(uint8(0), uint16(502), "text/html", []byte("<html>Bad Gateway</html>"))
	f.Add(uint8(1), uint16(200), "application/json; charset=utf-8", []byte(`{"pool":1}`))
	f.Add(uint8(2), uint16(503), "application/json", []byte(`not json`))
	f.Add(uint8(3), uint16(200), "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, sel uint8, code uint16, ctype string, body []byte) {
		if len(body) > 1<<10 {
			return // long inputs are slow to minimize
		}
		tr := answerTransport{code: 200 + int(code)%400, ctype: ctype, body: body}
		status := fmt.Sprintf("%d %s", tr.code, http.StatusText(tr.code))
		var answers [][]byte
		c := &Client{Base: "http://admin.test/", HTTP: &http.Client{Transport: tr},
			OnAnswer: func(b []byte) { answers = append(answers, bytes.Clone(b)) }}
		got, err := clientCall(c, sel)
		isJSON := strings.HasPrefix(http.Header{"Content-Type": {ctype}}.Get("Content-Type"), "application/json")
		if !isJSON {
			if err == nil || !strings.Contains(err.Error(), status) || len(answers) != 0 {
				t.Fatalf("%s %q: %v, %d answers", status, ctype, err, len(answers))
			}
			return
		}
		if len(answers) > 1 || len(answers) == 1 && !bytes.Equal(answers[0], body) {
			t.Fatalf("OnAnswer got %q for %q", answers, body)
		}
		var se *StatusError
		if tr.code != http.StatusOK {
			var api APIError
			_ = json.Unmarshal(body, &api)
			if !errors.As(err, &se) || se.Code != tr.code || se.Status != status || se.API != api || len(answers) != 1 {
				t.Fatalf("%s %q: %#v, %d answers", status, body, err, len(answers))
			}
			if e := se.Error(); strings.TrimSpace(e) == "" || !strings.Contains(e, status) || !strings.Contains(e, api.Error) {
				t.Fatalf("%s %q: error %q", status, body, e)
			}
			return
		}
		want := reflect.New(reflect.TypeOf(got))
		if derr := json.Unmarshal(body, want.Interface()); derr != nil {
			if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), derr.Error()) || len(answers) != 0 {
				t.Fatalf("%q: %v, want the error %v", body, err, derr)
			}
			return
		}
		if err != nil || !reflect.DeepEqual(got, want.Elem().Interface()) || len(answers) != 1 {
			t.Fatalf("%q: %#v, %v; want %#v", body, got, err, want.Elem().Interface())
		}
		// Encoded again by the API's writer, it decodes the same.
		again, err := clientCall(&Client{Base: "http://admin.test", HTTP: &http.Client{Transport: answerTransport{
			code: 200, ctype: "application/json", body: answer(got)}}}, sel)
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(again)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%q decoded as %s, written and read back as %s, %v", body, a, b, err)
		}
	})
}
