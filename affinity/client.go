package affinity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls the admin API that Handler serves on a running instance;
// `pipegate ctl` is built on it:
//
//	c := &affinity.Client{Base: "http://127.0.0.1:9143"}
//	u, err := c.User(ctx, "", "alice@example.test")
//	var se *affinity.StatusError
//	if errors.As(err, &se) && se.Code == http.StatusNotFound { ... }
//
// Every method sends one request and waits for the answer (bound it with
// ctx); move and evacuate may wait for the kicks of the users' sessions.
// pool may be "" when the instance has one pool.
type Client struct {
	// Base is the URL the API is mounted under, e.g. "http://127.0.0.1:9143".
	Base string
	// HTTP sends the requests; nil is http.DefaultClient.
	HTTP *http.Client
	// OnAnswer, if set, is called with the body of every JSON answer,
	// error answers included, before it is returned (`pipegate ctl
	// --json` prints it).
	OnAnswer func(body []byte)
}

// StatusError is a JSON answer of the API other than 200 OK.
type StatusError struct {
	Code   int      // HTTP status code: 400, 404, 409, 503, ...
	Status string   // HTTP status line, e.g. "404 Not Found"
	API    APIError // the answer: the message and the field it names
}

func (e *StatusError) Error() string {
	msg := e.API.Error
	if msg == "" { // an answer without one: a proxy's, say
		msg = "request refused"
	}
	if e.API.Field != "" {
		return fmt.Sprintf("%s (%s, field %s)", msg, e.Status, e.API.Field)
	}
	return fmt.Sprintf("%s (%s)", msg, e.Status)
}

// User returns the user's assignment (GET /affinity).
func (c *Client) User(ctx context.Context, pool, user string) (UserInfo, error) {
	q := url.Values{"user": {user}}
	if pool != "" {
		q.Set("pool", pool)
	}
	var u UserInfo
	err := c.call(ctx, "GET", "/affinity?"+q.Encode(), nil, &u)
	return u, err
}

// Pools returns the members of the pool, or of every pool when pool is ""
// (GET /affinity/pools).
func (c *Client) Pools(ctx context.Context, pool string) ([]PoolInfo, error) {
	path := "/affinity/pools"
	if pool != "" {
		path += "?" + url.Values{"pool": {pool}}.Encode()
	}
	var ps []PoolInfo
	err := c.call(ctx, "GET", path, nil, &ps)
	return ps, err
}

// Move moves the user to the member to ("": the ring's choice), kicking its
// sessions (POST /affinity/move).
func (c *Client) Move(ctx context.Context, pool, user, to string) (MoveInfo, error) {
	var m MoveInfo
	err := c.call(ctx, "POST", "/affinity/move", map[string]any{"pool": pool, "user": user, "to": to}, &m)
	return m, err
}

// SetWeight sets the member's weight for every instance: 0 drains it, -1
// restores its configured weight (POST /affinity/weight).
func (c *Client) SetWeight(ctx context.Context, pool, member string, weight int) (WeightInfo, error) {
	var w WeightInfo
	err := c.call(ctx, "POST", "/affinity/weight", map[string]any{"pool": pool, "member": member, "weight": weight}, &w)
	return w, err
}

// Evacuate drains the member and moves all its users (POST
// /affinity/evacuate). When some moves failed it returns the moves done
// along with the error.
func (c *Client) Evacuate(ctx context.Context, pool, member string) (EvacuateInfo, error) {
	var ev EvacuateInfo
	err := c.call(ctx, "POST", "/affinity/evacuate", map[string]any{"pool": pool, "member": member}, &ev)
	return ev, err
}

// maxAnswer bounds the body of an answer.
const maxAnswer = 64 << 20

// call sends one request with body (if not nil) as JSON and decodes the
// answer into out (see Do).
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.Do(req, out)
}

// Do sends req, a request to the admin address (the methods' own, or one
// of another API there that answers alike, such as the session API), and
// decodes the JSON answer into out, also when it is an error answer (an
// evacuation's partial result). A JSON error answer is a *StatusError, an
// answer that is not JSON a *NotJSONError.
func (c *Client) Do(req *http.Request, out any) error {
	base, method, path := strings.TrimSuffix(c.Base, "/"), req.Method, req.URL.RequestURI()
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("admin API at %s: read answer: %w", base, err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return &NotJSONError{Base: base, Method: method, Path: path, Status: resp.Status, Body: strings.TrimSpace(string(data))}
	}
	derr := json.Unmarshal(data, out)
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{Code: resp.StatusCode, Status: resp.Status}
		_ = json.Unmarshal(data, &se.API)
		if c.OnAnswer != nil {
			c.OnAnswer(data)
		}
		return se
	}
	if derr != nil {
		return fmt.Errorf("admin API at %s: %s %s: %w", base, method, path, derr)
	}
	if c.OnAnswer != nil {
		c.OnAnswer(data)
	}
	return nil
}

// NotJSONError is an answer that is not JSON: not pipegate's admin API,
// or a version without the endpoint asked for.
type NotJSONError struct {
	Base, Method, Path string
	Status             string // HTTP status line
	Body               string // the answer, trimmed
}

func (e *NotJSONError) Error() string {
	return fmt.Sprintf("admin API at %s: %s %s: %s: %s", e.Base, e.Method, e.Path, e.Status, e.Body)
}
