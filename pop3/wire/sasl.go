package wire

import "encoding/base64"

// DecodeInitialResponse decodes the initial-response argument of AUTH
// (RFC 5034 section 4): base64, or "=" for an empty response.
func DecodeInitialResponse(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return decodeBase64([]byte(s))
}

// DecodeResponse decodes a client's line in an AUTH exchange: "*" cancels
// it (the server then answers -ERR), anything else must be base64 (an
// empty line is an empty response). Invalid data is a non-fatal *Error:
// RFC 5034 section 4 has the server reject the AUTH command.
func DecodeResponse(line []byte) (data []byte, cancel bool, err error) {
	if string(line) == "*" {
		return nil, true, nil
	}
	data, err = decodeBase64(line)
	return data, false, err
}

// decodeBase64 decodes standard padded base64 (RFC 4648 section 4) and
// nothing else: encoding/base64 alone would skip CR and LF.
func decodeBase64(b []byte) ([]byte, error) {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, refuse("Invalid base64 data")
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Strict().Decode(out, b)
	if err != nil {
		return nil, refuse("Invalid base64 data")
	}
	return out[:n], nil
}
