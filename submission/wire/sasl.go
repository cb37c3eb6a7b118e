package wire

import "github.com/pipegate/pipegate/gateway/sasl"

// DecodeInitialResponse decodes the initial-response argument of AUTH
// (RFC 4954 section 4): base64, or "=" for an empty response.
func DecodeInitialResponse(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return decodeBase64([]byte(s))
}

// DecodeResponse decodes a client's line in an AUTH exchange. "*" cancels
// it: the server then answers "501 5.7.0" (RFC 4954 section 4). Anything
// else must be base64, an empty line being an empty response; invalid
// data is a non-fatal "501 5.5.2 Cannot Base64-decode Client responses"
// (RFC 4954 sections 4 and 6).
func DecodeResponse(line []byte) (data []byte, cancel bool, err error) {
	if string(line) == "*" {
		return nil, true, nil
	}
	data, err = decodeBase64(line)
	return data, false, err
}

// TextBadBase64 is the text of the 501 5.5.2 to an answer that is not
// base64 (RFC 4954 section 4).
const TextBadBase64 = "Cannot Base64-decode Client responses"

// decodeBase64 decodes strict base64 (sasl.DecodeBase64), refused in
// this protocol's form.
func decodeBase64(b []byte) ([]byte, error) {
	out, err := sasl.DecodeBase64(b)
	if err != nil {
		return nil, &Error{Code: 501, Enhanced: "5.5.2", Text: TextBadBase64}
	}
	return out, nil
}
