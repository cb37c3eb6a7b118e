package authhttp

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// FuzzParseResponse: any answer headers give a route, a denial or an
// error, never a panic, and a route always has a backend.
func FuzzParseResponse(f *testing.F) {
	f.Add("Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n")
	f.Add("Auth-Status: OK\r\nX-Pipegate-Backend: imaps://[::1]:993?id=0, imap://h\r\n")
	f.Add("Auth-Status: Invalid login\r\nAuth-Wait: 3\r\nAuth-Error-Code: 535 5.7.8\r\n")
	f.Add("Auth-Status: OK\r\nAuth-Server: [::1]\r\nAuth-Port: 1\r\nX-Pipegate-Backend-TLS: starttls\r\nX-Pipegate-Server-Name: a\r\n")
	f.Fuzz(func(t *testing.T, headers string) {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.0 200 OK\r\n"+headers+"\r\n\r\n")), nil)
		if err != nil {
			return
		}
		resp.Body.Close()
		rt, err := parseResponse(resp.Header, "imap")
		var d *route.Denied
		switch {
		case errors.As(err, &d):
			if d.Text == "" || len(d.Text) > maxText || d.Wait < 0 {
				t.Fatalf("bad denial %+v", d)
			}
		case err == nil && len(rt.Backends) == 0:
			t.Fatal("a route without backends")
		}
	})
}
