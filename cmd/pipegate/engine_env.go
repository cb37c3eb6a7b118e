package main

import "os"

// tlsOnGoroutinesEnv turns off the event loops' own TLS 1.3 record layer
// in both daemons (pipe.Engine.TLSOnGoroutines): with it set to 1, TLS
// pairs run on goroutines with crypto/tls, as before that layer existed.
// It is a way back for operators, read once when a daemon starts.
const tlsOnGoroutinesEnv = "PIPEGATE_TLS_ON_GOROUTINES"

func tlsOnGoroutines() bool { return os.Getenv(tlsOnGoroutinesEnv) == "1" }

// goAcceptEnv makes `pipegate forward` accept with Go and set up each
// connection on a goroutine even for plain TCP forwards, which the event
// loops otherwise accept and connect themselves (forward.Deps.GoAccept).
// Another way back for operators, read once when the daemon starts.
const goAcceptEnv = "PIPEGATE_GO_ACCEPT"

func goAccept() bool { return os.Getenv(goAcceptEnv) == "1" }
