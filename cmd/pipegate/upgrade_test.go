package main

import "github.com/pipegate/pipegate/upgrade/process"

// readPIDFile is for the end-to-end tests.
func readPIDFile(path string) (int, error) { return process.ReadPIDFile(path) }
