//go:build !linux

package forward

import (
	"net"
	"os"
)

// Pairs move between processes on Linux only (pipe.Engine.Adopt).

func connKey(net.Conn) (pairKey, bool) { return pairKey{}, false }
func fileKey(*os.File) (pairKey, bool) { return pairKey{}, false }
