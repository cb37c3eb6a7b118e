package wire_test

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/pipegate/pipegate/sieve/wire"
)

func ExampleReader_ReadCommand() {
	in := "CAPABILITY\r\n" +
		"NOOP \"unterminated\r\n" + // refused, reading goes on
		"AUTHENTICATE \"PLAIN\" {20+}\r\nAGFsaWNlAHNlY3JldA==\r\n"
	r := wire.NewReader(bufio.NewReader(strings.NewReader(in)))
	for range 3 {
		cmd, err := r.ReadCommand()
		var we *wire.Error
		if errors.As(err, &we) {
			fmt.Printf("-> %q\n", we.Reply())
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		args, err := cmd.Strings(0, 2)
		fmt.Println(cmd.Name, args, err)
	}
	// Output:
	// CAPABILITY [] <nil>
	// -> "NO \"Unterminated quoted string\"\r\n"
	// AUTHENTICATE [PLAIN AGFsaWNlAHNlY3JldA==] <nil>
}

func ExampleCapabilities_Append() {
	caps := wire.Capabilities{
		{Name: "IMPLEMENTATION", Value: "pipegate"},
		{Name: "SASL", Value: "PLAIN LOGIN"},
		{Name: "STARTTLS"},
		{Name: "VERSION", Value: "1.0"},
	}
	b := caps.Append(nil)
	b = (&wire.Response{Type: "OK", Text: "pipegate ready"}).Append(b)
	b = (&wire.Response{Type: "NO", Code: "TRYLATER", Text: "Backend unavailable"}).Append(b)
	fmt.Print(strings.ReplaceAll(string(b), "\r\n", "\n"))
	// Output:
	// "IMPLEMENTATION" "pipegate"
	// "SASL" "PLAIN LOGIN"
	// "STARTTLS"
	// "VERSION" "1.0"
	// OK "pipegate ready"
	// NO (TRYLATER) "Backend unavailable"
}

func ExampleReadCapabilities() {
	greeting := "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN\"\r\n\"STARTTLS\"\r\nOK \"Dovecot ready.\"\r\n"
	caps, resp, err := wire.ReadCapabilities(bufio.NewReader(strings.NewReader(greeting)), 0, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	mechs, _ := caps.Value("SASL")
	fmt.Println(resp.Type, resp.Text, caps.Has("STARTTLS"), mechs)
	// Output: OK Dovecot ready. true PLAIN
}
