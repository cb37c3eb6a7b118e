package sieve

import "github.com/pipegate/pipegate/sieve/wire"

// cmdNoop handles NOOP [tag] (RFC 5804 section 2.13): the tag string comes
// back in the TAG response code, which clients use to resynchronise
// (sieve-connect after STARTTLS).
func (c *conn) cmdNoop(cmd *wire.Command) {
	args, err := cmd.Strings(0, 1)
	if err != nil {
		c.reply("NO", "", err.(*wire.Error).Text)
		return
	}
	r := &wire.Response{Type: "OK", Text: "NOOP completed."}
	if len(args) == 1 {
		r.Code, r.CodeArgs = "TAG", []wire.Value{{Kind: wire.KindQuoted, Str: args[0]}}
	}
	c.write(r.Append(nil))
}
