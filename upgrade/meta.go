package upgrade

import (
	"encoding/base64"
	"encoding/json"
)

// MetaWithState returns the JSON object {"headKey": head, "stateKey":
// state}, as json.Marshal gives it for a struct of the two, for a message
// whose state holds secrets (a pipe's TLS traffic secrets): the state's
// base64 is written here, into the returned slice only, where
// json.Marshal would leave a copy in its pooled buffer. The caller zeroes
// the result once sent. The keys are plain ASCII names.
func MetaWithState(headKey string, head any, stateKey string, state []byte) ([]byte, error) {
	h, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(headKey)+len(h)+len(stateKey)+base64.StdEncoding.EncodedLen(len(state))+12)
	b = append(b, `{"`...)
	b = append(b, headKey...)
	b = append(b, `":`...)
	b = append(b, h...)
	b = append(b, `,"`...)
	b = append(b, stateKey...)
	b = append(b, `":`...)
	if state == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, state)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}
