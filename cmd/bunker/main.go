// Command bunker backs up VM disk images and file trees into an encrypted,
// deduplicated repository and restores them.
//
// This package is the command-line layer only: it turns flags, environment
// variables and the config file into option structs, calls the library
// packages (repo, backup, restore, check, vmdisk) once per command, and
// renders their results as text or JSON. Errors are mapped to exit codes in
// one place, exit.go.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
