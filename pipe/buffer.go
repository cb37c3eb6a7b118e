package pipe

import (
	"sync"

	"github.com/pipegate/pipegate/pipe/internal/sock"
)

// bufSize holds a whole TLS record (16 KiB of plaintext) with room to
// batch a second one before writing.
const bufSize = 32 << 10

// bufPool lends copy buffers to directions that are moving bytes; a
// direction waiting for data holds none. Like the runtime's caches it is
// process-wide and invisible to callers.
var bufPool = sync.Pool{New: func() any { return sock.NewBuffer(bufSize) }}

func getBuf() *sock.Buffer  { return bufPool.Get().(*sock.Buffer) }
func putBuf(b *sock.Buffer) { bufPool.Put(b) }
