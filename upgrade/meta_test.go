package upgrade

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestMetaWithState: the same bytes as json.Marshal of a struct of the two
// fields, for any state (nil, empty, binary).
func TestMetaWithState(t *testing.T) {
	type head struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	type msg struct {
		Head  head   `json:"head"`
		State []byte `json:"state"`
	}
	for _, st := range [][]byte{nil, {}, []byte("secret\x00\xff\"\\"), bytes.Repeat([]byte{0xab}, 1000)} {
		h := head{Name: "a \"b\" <c>", N: 7}
		got, err := MetaWithState("head", h, "state", st)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(msg{Head: h, State: st})
		if !bytes.Equal(got, want) {
			t.Errorf("state %q:\n got %s\nwant %s", st, got, want)
		}
	}
}
