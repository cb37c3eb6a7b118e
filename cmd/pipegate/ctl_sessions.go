package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/maild"
)

// `pipegate ctl sessions` and `pipegate ctl kick`: the session API of the
// instance's admin address (maild's /sessions), which answers for that
// instance's sessions only.

// doSessions runs the commands sessions [ACCOUNT] and kick ACCOUNT.
func (c *ctl) doSessions(ctx context.Context, cmd string, args []string) error {
	switch {
	case cmd == "sessions" && len(args) > 1:
		return fmt.Errorf("usage: pipegate ctl sessions [ACCOUNT]")
	case cmd == "kick":
		if err := nargs(cmd, args, 1, "ACCOUNT"); err != nil {
			return err
		}
		if args[0] == "" {
			return fmt.Errorf("kick: the account is empty")
		}
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	if cmd == "kick" {
		var k maild.KickInfo
		body := url.Values{"account": {args[0]}}.Encode()
		if err := c.sessionsCall(ctx, api, "POST", "/sessions/kick", body, &k); err != nil {
			return err
		}
		if !c.json {
			fmt.Fprintf(c.stdout, "kicked %d session(s) of %s\n", k.Kicked, k.Account)
		}
		return nil
	}
	path, account := "/sessions", ""
	if len(args) == 1 {
		account = args[0]
		path += "?" + url.Values{"account": {account}}.Encode()
	}
	var list []gateway.SessionInfo
	if err := c.sessionsCall(ctx, api, "GET", path, "", &list); err != nil {
		return err
	}
	if !c.json {
		printSessions(c.stdout, list, account, time.Now())
	}
	return nil
}

// sessionsCall sends one request to the session API (form a form body for
// a POST) through the admin API's client, and decodes the JSON answer into
// out; with --json it prints the answer as it came. An error answer is an
// *affinity.StatusError: both APIs answer errors alike.
func (c *ctl) sessionsCall(ctx context.Context, api *affinity.Client, method, path, form string, out any) error {
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(api.Base, "/")+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	err = api.Do(req, out) // --json: the client's OnAnswer prints
	if _, ok := errors.AsType[*affinity.NotJSONError](err); ok {
		return fmt.Errorf("%w (a pipegate mail too old for sessions, or not pipegate mail?)", err)
	}
	return err
}

// printSessions prints the sessions as a table, then their number.
func printSessions(w io.Writer, list []gateway.SessionInfo, account string, now time.Time) {
	of := ""
	if account != "" {
		of = " of " + account
	}
	if len(list) == 0 {
		fmt.Fprintf(w, "no sessions%s on this instance\n", of)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tPROTOCOL\tCLIENT\tBACKEND\tTLS\tSINCE\tAGE\tID")
	for _, s := range list {
		backend := s.Backend
		if s.Pool != "" {
			backend += " (pool " + s.Pool + ")"
		}
		since, age := "-", "-"
		if !s.Since.IsZero() {
			since = s.Since.UTC().Format(time.RFC3339)
			age = now.Sub(s.Since).Round(time.Second).String()
		}
		account := s.Account
		if s.BackendAccount != "" {
			account += " (backend: " + s.BackendAccount + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", account, s.Protocol, s.Client, backend, tlsSides(s), since, age, s.ID)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d session(s)%s\n", len(list), of)
}

// tlsSides says which links of a session are encrypted.
func tlsSides(s gateway.SessionInfo) string {
	switch {
	case s.ClientTLS && s.BackendTLS:
		return "both"
	case s.ClientTLS:
		return "client"
	case s.BackendTLS:
		return "backend"
	}
	return "none"
}
