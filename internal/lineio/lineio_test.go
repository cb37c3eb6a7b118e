package lineio_test

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/lineio"
)

func TestReadLine(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"abc\r\n", "abc\r\n", nil},
		{"abcde\r\n", "abcde\r\n", nil},             // at the limit
		{"abcdef\r\n", "abcdef", lineio.ErrTooLong}, // one over: answered before the CRLF is read
		{"abcdefghij", "abcdef", lineio.ErrTooLong},
		{"ab", "", io.ErrUnexpectedEOF},
		{"", "", io.EOF},
	} {
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		got, err := lineio.ReadLine(br, lineio.Fixed(5))
		if !errors.Is(err, tc.err) || err == nil && string(got) != tc.want || len(got) > 5+2 {
			t.Errorf("ReadLine(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if s := lineio.SafeText("a\r\nb\x00c"); s != "a  b c" {
		t.Errorf("SafeText = %q", s)
	}
}
