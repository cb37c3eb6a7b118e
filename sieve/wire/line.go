package wire

import "github.com/pipegate/pipegate/internal/lineio"

// The line reading every mail protocol's codec shares (internal/lineio).
var (
	errLineTooLong = lineio.ErrTooLong
	readLine       = lineio.ReadLine
	fixed          = lineio.Fixed
	readErr        = lineio.ReadErr
	trimEOL        = lineio.TrimEOL
)

// SafeText makes s fit in one response line: CR, LF and NUL become spaces
// and the result is cut to 400 octets, so that text from elsewhere (a
// backend, a routing source) cannot add lines to a response.
func SafeText(s string) string { return lineio.SafeText(s) }
