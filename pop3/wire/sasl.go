package wire

import "github.com/pipegate/pipegate/gateway/sasl"

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

// TextBadBase64 refuses a SASL answer that is not base64.
const TextBadBase64 = "Invalid base64 data"

// decodeBase64 decodes strict base64 (sasl.DecodeBase64), refused in
// this protocol's form.
func decodeBase64(b []byte) ([]byte, error) {
	out, err := sasl.DecodeBase64(b)
	if err != nil {
		return nil, refuse(TextBadBase64)
	}
	return out, nil
}
