package main

// Every disk image format bunker reads and writes registers itself with
// vmdisk.
import _ "github.com/bunkerbackup/bunker/vmdisk/all"
