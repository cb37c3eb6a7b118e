package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/internal/xclient"
)

// MaxSessionID is the longest SESSION value XCLIENT keeps; a longer one
// is ignored (Dovecot's LOGIN_MAX_SESSION_ID_LEN).
const MaxSessionID = xclient.MaxSessionID

// MaxXClientName is the longest NAME or HELO value (Postfix's
// XCLIENT_README, note 1).
const MaxXClientName = 255

// XClient is what a trusted proxy in front says with XCLIENT (Postfix's
// XCLIENT_README; Dovecot adds SESSION and TTL, which Dovecot's and
// pipegate's submission proxies send): the attributes a gateway uses.
// Addr is invalid when ADDR was not given or [UNAVAILABLE], its port 0
// likewise; Local the same of DESTADDR and DESTPORT.
type XClient = xclient.Attrs

// XClientAttributes are the attribute names ParseXClient takes: Postfix's
// and Dovecot's. Any other is refused, as Postfix does.
var XClientAttributes = []string{
	"NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT", "REVERSE_NAME", // Postfix
	"SESSION", "TTL", "TIMEOUT", "FORWARD", "CLIENT-TRANSPORT", "DESTNAME", // Dovecot
}

// ParseXClient parses the parameters of XCLIENT as Postfix's
// XCLIENT_README has them: xclient-command = XCLIENT 1*( SP
// attribute-name "=" attribute-value ), attribute names in any case,
// values in xtext (RFC 3461 section 4); the value [UNAVAILABLE] (and
// [TEMPUNAVAIL] for NAME) says the proxy does not know. ADDR and DESTADDR
// are an IPv4 address or an IPv6 one after "IPV6:"; PORT and DESTPORT
// decimal port numbers 1 to 65535; PROTO SMTP or ESMTP; NAME and HELO at
// most 255 octets; TTL and TIMEOUT unsigned 32-bit decimal numbers
// (Dovecot's). An error is a *Error, "501 5.5.4" naming the attribute;
// nothing is then to be applied.
func ParseXClient(params string) (XClient, error) {
	p := xclient.Parser{Postfix: true}
	attrs := strings.Split(params, " ")
	if params == "" {
		return XClient{}, xclientError("Syntax: XCLIENT attribute=value ...")
	}
	for _, a := range attrs {
		rawName, raw, ok := strings.Cut(a, "=")
		name := strings.ToUpper(rawName)
		if !ok || !validAttrName(name) {
			return XClient{}, xclientError("Syntax: XCLIENT attribute=value ...")
		}
		known := false
		for _, k := range XClientAttributes {
			known = known || k == name
		}
		if !known {
			return XClient{}, xclientError("Bad XCLIENT attribute name: %s", name)
		}
		value, err := DecodeXText(raw)
		if err != nil {
			return XClient{}, xclientError("Invalid %s parameter: %v", name, err)
		}
		if strings.EqualFold(value, "[UNAVAILABLE]") || name == "NAME" && strings.EqualFold(value, "[TEMPUNAVAIL]") {
			p.Unavailable(name)
			continue
		}
		switch name {
		case "PROTO":
			if proto := strings.ToUpper(value); proto != "SMTP" && proto != "ESMTP" {
				err = errors.New("not SMTP or ESMTP")
			}
		case "NAME", "HELO", "REVERSE_NAME":
			if len(value) > MaxXClientName {
				err = fmt.Errorf("longer than %d octets", MaxXClientName)
			}
		case "TIMEOUT":
			_, err = xclient.ParseUint(value, 32)
		default:
			err = p.Set(name, value)
		}
		if err != nil {
			return XClient{}, xclientError("Invalid %s parameter: %v", name, err)
		}
	}
	return p.Attrs(), nil
}

func xclientError(format string, args ...any) *Error {
	return &Error{Code: 501, Enhanced: "5.5.4", Text: fmt.Sprintf(format, args...)}
}

// validAttrName: letters, digits, "-" and "_" (REVERSE_NAME), starting
// with a letter.
func validAttrName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// XText encodes s as RFC 3461 section 4 has it: "+" and two upper-case
// hex digits for "+", "=" and every octet outside "!" to "~".
func XText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// DecodeXText decodes xtext (RFC 3461 section 4): xtext = *( xchar /
// hexchar ), xchar any octet from "!" to "~" but "+" and "=", hexchar "+"
// and two upper-case hex digits.
func DecodeXText(s string) (string, error) {
	if !strings.ContainsAny(s, "+=") {
		for i := 0; i < len(s); i++ {
			if s[i] < '!' || s[i] > '~' {
				return "", fmt.Errorf("octet 0x%02x in xtext", s[i])
			}
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
				return "", errors.New(`"+" without two upper-case hex digits in xtext`)
			}
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", fmt.Errorf("octet 0x%02x in xtext", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isUpperHex(c byte) bool { return isDigit(c) || c >= 'A' && c <= 'F' }
