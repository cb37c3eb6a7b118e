package pipe

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// largeSize is moved each way at once: 64 MiB always, 1 GiB with
// PIPEGATE_LARGE=1.
func largeSize() int64 {
	if os.Getenv("PIPEGATE_LARGE") == "1" {
		return 1 << 30
	}
	return 64 << 20
}

// TestLargeTransfer: large streams both ways at once arrive intact.
// Plain pairs run on every flavour; TLS pairs, which take the goroutine
// flavour everywhere and are slow under -race, on Go and Engine (auto).
func TestLargeTransfer(t *testing.T) {
	forFlavours(t, testLargeTransfer)
}

func testLargeTransfer(t *testing.T, fl flavour) {
	size := largeSize()
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kUnix, kTCP}, {kTLS, kTCP}, {kTLS, kTLS}} {
		if pr[0] == kTLS && fl.name != "go" && fl.name != "engine-auto" {
			continue
		}
		t.Run(pairName(pr), func(t *testing.T) {
			h := startOn(t, fl, pr[0], pr[1], nil)
			type sum struct {
				n   int64
				sum [32]byte
				err error
			}
			sent := make(chan sum, 2)
			recv := make(chan sum, 2)
			for i, c := range []net.Conn{h.aPeer, h.bPeer} {
				go func() {
					n, s, err := sendStream(c, size, uint64(i))
					sent <- sum{n, s, err}
				}()
				go func() {
					n, s, err := hashStream(c)
					recv <- sum{n, s, err}
				}()
			}
			want := map[[32]byte]bool{}
			for range 2 {
				s := <-sent
				if s.err != nil || s.n != size {
					t.Fatalf("send: %d bytes, %v", s.n, s.err)
				}
				want[s.sum] = true
			}
			for range 2 {
				s := <-recv
				if s.err != nil || s.n != size || !want[s.sum] {
					t.Fatalf("received %d bytes (want %d), err %v, checksum match %v", s.n, size, s.err, want[s.sum])
				}
			}
			r := h.wait(t)
			if r.BytesAToB != size || r.BytesBToA != size || r.Reason != ReasonEOF {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

// stream writes size pseudo-random bytes (seeded) to w, chunk by chunk.
func stream(w io.Writer, size int64, seed uint64) (int64, error) {
	rng := rand.NewChaCha8([32]byte{byte(seed)})
	block := make([]byte, 1<<20)
	_, _ = rng.Read(block)
	chunk := make([]byte, len(block))
	var n int64
	for i := uint64(0); n < size; i++ {
		copy(chunk, block)
		binary.LittleEndian.PutUint64(chunk, i^seed<<56)
		c := chunk[:min(int64(len(chunk)), size-n)]
		m, err := w.Write(c)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// sendStream writes the stream and half-closes c.
func sendStream(c net.Conn, size int64, seed uint64) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := stream(io.MultiWriter(c, h), size, seed)
	if err == nil {
		err = c.(interface{ CloseWrite() error }).CloseWrite()
	}
	return n, sum32(h), err
}

// hashStream reads c to EOF.
func hashStream(c net.Conn) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	return n, sum32(h), err
}

func sum32(h hash.Hash) [32]byte { return [32]byte(h.Sum(nil)) }
