package main

import (
	"context"
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
  sessions [ACCOUNT]     this instance's logged-in sessions (of ACCOUNT): client, backend, since
  kick ACCOUNT           end ACCOUNT's sessions on this instance, with the protocol's goodbye

The pool commands hold for every instance (the state is in Redis); sessions
and kick answer for the instance asked only: with several, ask each.

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

// client returns the API's client for --admin; with --json it prints
// every answer as it comes.
func (c *ctl) client() (*affinity.Client, error) {
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	// One request per run: no connection is kept.
	api := &affinity.Client{Base: base, HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	if c.json {
		api.OnAnswer = func(body []byte) { c.stdout.Write(body) }
	}
	return api, nil
}

// bounded bounds a request other than move and evacuate.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, ctlTimeout)
}

func (c *ctl) do(ctx context.Context, cmd string, args []string) error {
	var api *affinity.Client
	// ready checks the arguments and makes the client.
	ready := func(n int, names string) error {
		if err := nargs(cmd, args, n, names); err != nil {
			return err
		}
		var err error
		api, err = c.client()
		return err
	}
	// show prints the answer unless --json printed it.
	show := func(print func()) {
		if !c.json {
			print()
		}
	}
	switch cmd {
	case "sessions", "kick": // ctl_sessions.go
		return c.doSessions(ctx, cmd, args)
	case "show":
		if err := ready(1, "USER"); err != nil {
			return err
		}
		ctx, cancel := bounded(ctx)
		defer cancel()
		u, err := api.User(ctx, c.pool, args[0])
		if err == nil {
			show(func() { c.printUser(u) })
		}
		return err
	case "pools":
		if err := ready(0, ""); err != nil {
			return err
		}
		ctx, cancel := bounded(ctx)
		defer cancel()
		ps, err := api.Pools(ctx, c.pool)
		if err == nil {
			show(func() { c.printPools(ps) })
		}
		return err
	case "move":
		if err := ready(2, "USER MEMBER"); err != nil {
			return err
		}
		to := args[1]
		if to == "-" {
			to = ""
		}
		m, err := api.Move(ctx, c.pool, args[0], to)
		if err == nil {
			show(func() { c.printMove(m) })
		}
		return err
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
		if err := ready(len(args), names); err != nil { // the client, after the weight
			return err
		}
		ctx, cancel := bounded(ctx)
		defer cancel()
		w, err := api.SetWeight(ctx, c.pool, args[0], weight)
		if err == nil {
			show(func() { c.printWeight(w) })
		}
		return err
	case "evacuate":
		if err := ready(1, "MEMBER"); err != nil {
			return err
		}
		ev, err := api.Evacuate(ctx, c.pool, args[0])
		if err == nil || len(ev.Moved) > 0 {
			show(func() { c.printEvacuate(ev) }) // on error: the moves done before the failure
		}
		return err
	}
	return fmt.Errorf("unknown command %q (show, pools, move, drain, weight, evacuate, sessions, kick)", cmd)
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

func (c *ctl) printWeight(w affinity.WeightInfo) {
	fmt.Fprintf(c.stdout, "%s: weight %d (configured %d) in pool %s\n", w.Member, w.Weight, w.ConfiguredWeight, w.Pool)
	if w.Weight == 0 {
		fmt.Fprintln(c.stdout, "drained: no new users; its users stay until they leave (evacuate moves them)")
	}
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
	if u.Logins > 0 {
		fmt.Fprintf(tw, "logins\t%d in progress\n", u.Logins)
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
