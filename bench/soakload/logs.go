package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
)

// addrRE matches the IPv4 addresses (and ports) in log texts, which
// summarise without them.
var addrRE = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+(:\d+)?`)

// fdRE matches the descriptor numbers in the event loops' errors.
var fdRE = regexp.MustCompile(`\(fd \d+\)`)

// norm is a log text without its addresses, descriptors and long numbers.
func norm(s string) string {
	return shorten(fdRE.ReplaceAllString(addrRE.ReplaceAllString(s, "ADDR"), "(fd N)"))
}

// logStats is what one daemon's log says.
type logStats struct {
	lines, nonJSON int
	levels         map[string]int
	msgs           map[string]int // WARN and ERROR messages (with err, shortened)
	reasons        map[string]int // per-connection lines' reason
	clients        map[string]int // per-connection lines by client address
	reloads        map[string]int // reload messages
	secrets        []string       // lines that hold a password
	panics         []string
}

// secrets are strings no log line may hold: the passwords, in clear and
// inside the SASL PLAIN responses the clients send.
func secrets() []string {
	out := []string{password, badPass, "Soak-Secret", "Wrong-Guess"}
	for _, u := range []string{userA, userB} {
		for _, p := range []string{password, badPass} {
			out = append(out, plainIR(u, p))
		}
	}
	return out
}

// readLog reads a daemon's JSON log; perConn says which messages are the
// one line per connection.
func readLog(path string, perConn func(msg string) bool, reload func(msg string) bool) (*logStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &logStats{levels: map[string]int{}, msgs: map[string]int{}, reasons: map[string]int{}, clients: map[string]int{}, reloads: map[string]int{}}
	secret := secrets()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		st.lines++
		for _, s := range secret {
			if strings.Contains(line, s) && len(st.secrets) < 5 {
				st.secrets = append(st.secrets, shorten(line))
			}
		}
		if strings.Contains(line, "panic") || strings.Contains(line, "[running]") {
			if len(st.panics) < 5 {
				st.panics = append(st.panics, shorten(line))
			}
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			st.nonJSON++
			continue
		}
		level, _ := rec["level"].(string)
		msg, _ := rec["msg"].(string)
		st.levels[level]++
		if level == "WARN" || level == "ERROR" {
			text := level + " " + msg
			if e, ok := rec["err"].(string); ok {
				text += ": " + e
			}
			st.msgs[norm(text)]++
		}
		if reload(msg) {
			st.reloads[level+" "+msg]++
		}
		if perConn(msg) {
			if c, ok := rec["client"].(string); ok {
				st.clients[c]++
			}
			if r, ok := rec["reason"].(string); ok {
				text := msg + ": " + r
				if e, ok := rec["err"].(string); ok {
					text += " err=" + e
				}
				st.reasons[norm(text)]++
			}
		}
	}
	return st, sc.Err()
}

// checkLogs reads both daemons' logs and checks them.
func (s *soak) checkLogs() {
	mail, err := readLog(s.env.mail.log,
		func(msg string) bool { return strings.HasSuffix(msg, " session") },
		func(msg string) bool { return strings.Contains(msg, "reload") })
	if err != nil {
		s.finding("mail log: %v", err)
		return
	}
	fwd, err := readLog(s.env.fwd.log,
		func(msg string) bool { return msg == "connection closed" || msg == "connection refused" },
		func(msg string) bool { return strings.Contains(msg, "reload") })
	if err != nil {
		s.finding("forward log: %v", err)
		return
	}
	s.checkLog("mail", s.env.mail.log, mail, s.tally.snapshot(s.tally.mailClients))
	s.checkLog("forward", s.env.fwd.log, fwd, s.tally.snapshot(s.tally.fwdClients))
}

// topN prints the n largest counts of m.
func topN(m map[string]int, n int) {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	for i, k := range keys {
		if i == n {
			fmt.Printf("      ... %d more\n", len(keys)-n)
			break
		}
		fmt.Printf("    %6d x %s\n", m[k], k)
	}
}

func (s *soak) checkLog(name, path string, st *logStats, dialed map[string]int) {
	fmt.Printf("\n== %s log (%s): %d lines, %d not JSON; levels %v ==\n", name, path, st.lines, st.nonJSON, st.levels)
	fmt.Printf("  per-connection lines by reason:\n")
	topN(st.reasons, 25)
	if len(st.msgs) > 0 {
		fmt.Printf("  WARN and ERROR lines:\n")
		topN(st.msgs, 25)
	}
	fmt.Printf("  reload lines:\n")
	topN(st.reloads, 10)
	if st.levels["ERROR"] > 0 {
		s.finding("%s log: %d lines at ERROR", name, st.levels["ERROR"])
	}
	for _, l := range st.secrets {
		s.finding("%s log: a password in: %s", name, l)
	}
	for _, l := range st.panics {
		s.finding("%s log: panic or stack: %s", name, l)
	}
	missing, dup, unknown := 0, 0, 0
	var exMissing, exDup []string
	for c, n := range dialed {
		got := st.clients[c]
		switch {
		case got < n:
			missing += n - got
			if len(exMissing) < 5 {
				exMissing = append(exMissing, c)
			}
		case got > n:
			dup += got - n
			if len(exDup) < 5 {
				exDup = append(exDup, c)
			}
		}
	}
	for c := range st.clients {
		if _, ok := dialed[c]; !ok && !strings.HasPrefix(c, "127.0.0.1:") {
			unknown++
		}
	}
	total := 0
	for _, n := range dialed {
		total += n
	}
	fmt.Printf("  connections made %d; not logged %d %v; logged more than once %d %v; logged but not made %d\n",
		total, missing, exMissing, dup, exDup, unknown)
	if missing > 0 {
		s.finding("%s log: %d connections without their line (e.g. %v)", name, missing, exMissing)
	}
	if dup > 0 {
		s.finding("%s log: %d connections logged more than once (e.g. %v)", name, dup, exDup)
	}
}
