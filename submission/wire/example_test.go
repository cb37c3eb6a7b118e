package wire_test

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/pipegate/pipegate/submission/wire"
)

func ExampleReader_ReadCommand() {
	in := "EHLO client.example.org\r\n" +
		"MAIL FROM:<a@example.org>\x00\r\n" + // refused, reading goes on
		"AUTH PLAIN\r\n" +
		"AGFsaWNlAHNlY3JldA==\r\n" // the AUTH exchange line after "334 "
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
		fmt.Printf("%s %q\n", cmd.Verb, cmd.Params)
		if cmd.Verb == "AUTH" {
			b, _ := (&wire.Reply{Code: 334}).Append(nil)
			fmt.Printf("-> %q\n", b)
			line, _ := r.ReadAuthLine()
			data, cancel, err := wire.DecodeResponse(line)
			fmt.Printf("%q %v %v\n", data, cancel, err)
		}
	}
	// Output:
	// EHLO "client.example.org"
	// -> "500 5.5.2 Invalid character 0x00 in command\r\n"
	// AUTH "PLAIN"
	// -> "334 \r\n"
	// "\x00alice\x00secret" false <nil>
}

func ExampleReply_Append() {
	b, err := (&wire.Reply{Code: 250, Lines: []string{"gw.example.org", "PIPELINING", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"}}).Append(nil)
	fmt.Printf("%q %v\n", b, err)
	b, err = (&wire.Reply{Code: 535, Enhanced: "5.7.8", Lines: []string{"Authentication credentials invalid"}}).Append(nil)
	fmt.Printf("%q %v\n", b, err)
	// Output:
	// "250-gw.example.org\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n" <nil>
	// "535 5.7.8 Authentication credentials invalid\r\n" <nil>
}

func ExampleReadReply() {
	br := bufio.NewReader(strings.NewReader("250-mx.example.org\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"))
	rep, err := wire.ReadReply(br, 0, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	exts := rep.Extensions()
	mechs, _ := exts.Params("AUTH")
	fmt.Println(rep.Code, exts.Has("STARTTLS"), mechs)
	// Output: 250 true [PLAIN LOGIN]
}
