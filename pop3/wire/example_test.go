package wire_test

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/pipegate/pipegate/pop3/wire"
)

func ExampleReader_ReadCommand() {
	in := "user alice\r\n" +
		"PASS open sesame\r\n" +
		"X\r\n" + // a bad keyword: refused, reading goes on
		"AUTH PLAIN\r\n" +
		"AGFsaWNlAHNlY3JldA==\r\n" // the SASL response after "+ "
	r := wire.NewReader(bufio.NewReader(strings.NewReader(in)))
	for range 4 {
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
		fmt.Printf("%s %q\n", cmd.Name, cmd.Rest)
		if cmd.Name == "AUTH" {
			fmt.Printf("-> %q\n", (&wire.Response{Status: wire.StatusContinue}).Append(nil))
			line, _ := r.ReadSASLResponse()
			data, cancel, err := wire.DecodeResponse(line)
			fmt.Printf("%q %v %v\n", data, cancel, err)
		}
	}
	// Output:
	// USER "alice"
	// PASS "open sesame"
	// -> "-ERR Invalid command keyword\r\n"
	// AUTH "PLAIN"
	// -> "+ \r\n"
	// "\x00alice\x00secret" false <nil>
}

func ExampleReadMultiLine() {
	br := bufio.NewReader(strings.NewReader("+OK\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n"))
	resp, err := wire.ReadMultiLine(br, 0, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	caps := wire.ParseCapa(resp.Lines)
	mechs, _ := caps.Args("SASL")
	fmt.Println(caps.Has("STLS"), mechs)
	// Output: true [PLAIN LOGIN]
}

func ExampleResponse_Append() {
	fmt.Printf("%q\n", (&wire.Response{Status: wire.StatusErr, Code: wire.CodeSysTemp, Text: "Backend unavailable"}).Append(nil))
	// Output: "-ERR [SYS/TEMP] Backend unavailable\r\n"
}
