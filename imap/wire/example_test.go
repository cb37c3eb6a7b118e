package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/pipegate/pipegate/imap/wire"
)

func ExampleReader_ReadCommand() {
	in := "a1 LOGIN {5}\r\nalice \"s\\\"cret\"\r\n" + // a synchronizing literal and a quoted string
		"a2 LOGIN \"unterminated\r\n" + // a syntax error
		"a3 ID (\"name\" \"demo\" \"version\" NIL)\r\n"
	r := wire.NewReader(bufio.NewReader(strings.NewReader(in)))
	r.Continue = func(n int64) error {
		fmt.Printf("-> + Ready for %d bytes\n", n) // a server writes "+ ..." to the client here
		return nil
	}
	for range 3 {
		cmd, err := r.ReadCommand()
		var we *wire.Error
		if errors.As(err, &we) {
			fmt.Printf("-> %s BAD %s\n", we.Tag, we.Text)
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %s %d args\n", cmd.Tag, cmd.Name, len(cmd.Args))
		if cmd.Name == "LOGIN" {
			args, _ := cmd.AStrings(2)
			fmt.Printf("user %q password %q\n", args[0], args[1])
		}
	}
	// Output:
	// -> + Ready for 5 bytes
	// a1 LOGIN 2 args
	// user "alice" password "s\"cret"
	// -> a2 BAD Unterminated quoted string
	// a3 ID 1 args
}

func ExampleWriter() {
	var out bytes.Buffer
	w := &wire.Writer{W: bufio.NewWriter(&out), LiteralPlus: true} // the server advertised LITERAL+
	w.Atom("a1").SP().Atom("LOGIN").SP().String("alice").SP().String("p\u00e4ss").CRLF()
	if err := w.Flush(); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%q\n", out.String())
	// Output: "a1 LOGIN \"alice\" {5+}\r\npäss\r\n"
}

func ExampleReadResponse() {
	br := bufio.NewReader(strings.NewReader("* OK [CAPABILITY IMAP4rev1 LITERAL+ ID] ready\r\n"))
	resp, err := wire.ReadResponse(br, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Tag, resp.Type, resp.Caps(), wire.HasCap(resp.Caps(), "literal+"))
	// Output: * OK [IMAP4rev1 LITERAL+ ID] true
}
