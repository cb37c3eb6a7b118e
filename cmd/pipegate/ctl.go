package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pipegate/pipegate/affinity"
)

const ctlUsage = `usage: pipegate ctl [--admin ADDR] [--pool NAME] [--json] COMMAND [ARGS]

Talks to the admin API of a running pipegate (on its metrics_addr).

commands:
  show USER              the user's member, sessions by instance, expiry
  pools                  members of the pools: weight, health, sessions, users
  move USER MEMBER       move the user to MEMBER, kicking its sessions ("-" as MEMBER: the ring's choice)
  drain MEMBER           weight 0: no new users; existing ones stay until they leave
  weight MEMBER N        set the member's weight for every instance ("reset": the configured weight)
  evacuate MEMBER        drain the member and move all its users, kicking their sessions

flags:
`

// defaultAdmin is the metrics_addr of the docs' examples (docs/mail.md).
const defaultAdmin = "127.0.0.1:9143"

// ctlTimeout bounds a request other than move and evacuate, which may wait
// for kicks (evacuate: for each of the member's users).
const ctlTimeout = 30 * time.Second

// runCtl is `pipegate ctl`: 0 done, 2 any error (bad usage or refused).
func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipegate ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, ctlUsage)
		fs.PrintDefaults()
	}
	c := ctl{stdout: stdout}
	fs.StringVar(&c.admin, "admin", defaultAdmin, "admin address of a pipegate instance: HOST:PORT or http://HOST:PORT")
	fs.StringVar(&c.pool, "pool", "", "pool name (needed when the instance has several pools)")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON answer")
	// Flags may come before or after the command and its arguments.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if len(pos) == 0 {
		fs.Usage()
		return 2
	}
	if err := c.do(ctx, pos[0], pos[1:]); err != nil {
		fmt.Fprintf(stderr, "pipegate ctl: %v\n", err)
		return 2
	}
	return 0
}

type ctl struct {
	admin, pool string
	json        bool
	stdout      io.Writer
}

// nargs checks the number of a command's arguments.
func nargs(cmd string, args []string, n int, names string) error {
	if len(args) != n {
		return fmt.Errorf("usage: pipegate ctl %s %s", cmd, names)
	}
	return nil
}

func (c *ctl) do(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "show":
		if err := nargs(cmd, args, 1, "USER"); err != nil {
			return err
		}
		q := url.Values{"user": {args[0]}}
		if c.pool != "" {
			q.Set("pool", c.pool)
		}
		var u affinity.UserInfo
		return c.call(ctx, "GET", "/affinity?"+q.Encode(), nil, &u, func() { c.printUser(u) })
	case "pools":
		if err := nargs(cmd, args, 0, ""); err != nil {
			return err
		}
		path := "/affinity/pools"
		if c.pool != "" {
			path += "?" + url.Values{"pool": {c.pool}}.Encode()
		}
		var ps []affinity.PoolInfo
		return c.call(ctx, "GET", path, nil, &ps, func() { c.printPools(ps) })
	case "move":
		if err := nargs(cmd, args, 2, "USER MEMBER"); err != nil {
			return err
		}
		to := args[1]
		if to == "-" {
			to = ""
		}
		var m affinity.MoveInfo
		body := map[string]any{"pool": c.pool, "user": args[0], "to": to}
		return c.call(ctx, "POST", "/affinity/move", body, &m, func() { c.printMove(m) })
	case "drain", "weight":
		names := "MEMBER N"
		if cmd == "drain" {
			names = "MEMBER"
		}
		if err := nargs(cmd, args, len(strings.Fields(names)), names); err != nil {
			return err
		}
		weight := 0
		if cmd == "weight" {
			n, err := strconv.Atoi(args[1])
			switch {
			case args[1] == "reset":
				weight = -1
			case err != nil || n < 0:
				return fmt.Errorf("weight %q: want a number, 0 or more, or reset", args[1])
			default:
				weight = n
			}
		}
		var w affinity.WeightInfo
		body := map[string]any{"pool": c.pool, "member": args[0], "weight": weight}
		return c.call(ctx, "POST", "/affinity/weight", body, &w, func() {
			fmt.Fprintf(c.stdout, "%s: weight %d (configured %d) in pool %s\n", w.Member, w.Weight, w.ConfiguredWeight, w.Pool)
			if w.Weight == 0 {
				fmt.Fprintln(c.stdout, "drained: no new users; its users stay until they leave (evacuate moves them)")
			}
		})
	case "evacuate":
		if err := nargs(cmd, args, 1, "MEMBER"); err != nil {
			return err
		}
		var ev affinity.EvacuateInfo
		body := map[string]any{"pool": c.pool, "member": args[0]}
		err := c.call(ctx, "POST", "/affinity/evacuate", body, &ev, func() { c.printEvacuate(ev) })
		if err != nil && len(ev.Moved) > 0 && !c.json {
			c.printEvacuate(ev) // the moves done before the failure
		}
		return err
	}
	return fmt.Errorf("unknown command %q (show, pools, move, drain, weight, evacuate)", cmd)
}

// baseURL turns --admin into the API's base URL.
func (c *ctl) baseURL() (string, error) {
	a := c.admin
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("--admin %q: want HOST:PORT or http://HOST:PORT", c.admin)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// call sends one request; on 200 it decodes the answer into out and
// prints it (the JSON itself with --json); otherwise it returns the API's
// error (and decodes what it can into out).
func (c *ctl) call(ctx context.Context, method, path string, body any, out any, print func()) error {
	base, err := c.baseURL()
	if err != nil {
		return err
	}
	if method == "GET" || path == "/affinity/weight" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ctlTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// One request per run: no connection is kept.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API at %s: read answer: %w", base, err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("admin API at %s: %s %s: %s: %s", base, method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	derr := json.Unmarshal(data, out)
	if resp.StatusCode != http.StatusOK {
		var e affinity.APIError
		_ = json.Unmarshal(data, &e)
		if c.json {
			c.stdout.Write(data)
		}
		if e.Field != "" {
			return fmt.Errorf("%s (%s, field %s)", e.Error, resp.Status, e.Field)
		}
		return fmt.Errorf("%s (%s)", e.Error, resp.Status)
	}
	if derr != nil {
		return fmt.Errorf("admin API at %s: %s %s: %w", base, method, path, derr)
	}
	if c.json {
		c.stdout.Write(data)
		return nil
	}
	print()
	return nil
}

func (c *ctl) printUser(u affinity.UserInfo) {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "user\t%s\n", u.User)
	fmt.Fprintf(tw, "pool\t%s\n", u.Pool)
	if u.Member == "" {
		fmt.Fprintf(tw, "member\t(not assigned: the next login picks one)\n")
	} else {
		fmt.Fprintf(tw, "member\t%s\n", u.Member)
	}
	if u.Moving {
		fmt.Fprintf(tw, "moving\tyes: logins refused until the move ends\n")
	}
	total := 0
	var per []string
	for _, inst := range sortedKeys(u.Sessions) {
		total += u.Sessions[inst]
		per = append(per, fmt.Sprintf("%s=%d", inst, u.Sessions[inst]))
	}
	if total == 0 {
		fmt.Fprintf(tw, "sessions\t0\n")
	} else {
		fmt.Fprintf(tw, "sessions\t%d (%s)\n", total, strings.Join(per, ", "))
	}
	switch {
	case u.TTL != "":
		fmt.Fprintf(tw, "expires\tin %s (%s)\n", u.TTL, u.Expires.Format(time.RFC3339))
	case u.Member != "":
		fmt.Fprintf(tw, "expires\theld by its sessions\n")
	}
}

func (c *ctl) printPools(ps []affinity.PoolInfo) {
	for i, p := range ps {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		fmt.Fprintf(c.stdout, "pool %s\n", p.Pool)
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER\tWEIGHT\tHEALTH\tSESSIONS\tUSERS\tLAST CHECK")
		for _, m := range p.Members {
			weight := strconv.Itoa(m.Weight)
			if m.Weight != m.ConfiguredWeight {
				weight += fmt.Sprintf(" (of %d)", m.ConfiguredWeight)
			}
			if m.Weight == 0 {
				weight += " drained"
			}
			health := "up"
			if !m.Up {
				health = "down"
			}
			if m.Health.Fails > 0 {
				health += fmt.Sprintf(", %d failed", m.Health.Fails)
			}
			check := "-"
			if !m.Health.Checked.IsZero() {
				check = m.Health.Checked.UTC().Format(time.RFC3339)
				if m.Health.LastError != "" {
					check += ": " + m.Health.LastError
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", m.Name, weight, health, m.Sessions, m.Users, check)
		}
		tw.Flush()
	}
}

func (c *ctl) printMove(m affinity.MoveInfo) {
	from := m.From
	if from == "" {
		from = "(none)"
	}
	fmt.Fprintf(c.stdout, "%s: %s -> %s in pool %s; kicks confirmed by %d of %d instances", m.User, from, m.To, m.Pool, m.Confirmed, m.Instances)
	if m.TimedOut {
		fmt.Fprint(c.stdout, " (timed out: some sessions closed late)")
	}
	fmt.Fprintln(c.stdout)
}

func (c *ctl) printEvacuate(ev affinity.EvacuateInfo) {
	for _, m := range ev.Moved {
		c.printMove(m)
	}
	fmt.Fprintf(c.stdout, "%s: drained, %d user(s) moved\n", ev.Member, len(ev.Moved))
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
