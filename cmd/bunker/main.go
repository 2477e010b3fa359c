// Command bunker backs up VM disk images and file trees into an encrypted,
// deduplicated repository and restores them.
//
// This package is the command-line layer only: it turns flags, environment
// variables and the config file into option structs, calls the library
// packages (repo, backup, restore, check, vmdisk) once per command, and
// renders their results as text or JSON. Errors are mapped to exit codes in
// one place, exit.go.
package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

func main() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		trackMemoryLimit()
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Memory limit tracking. With the runtime's defaults the heap grows to twice
// the live data before a collection, and freed pages go back to the system
// slowly. Most of bunker's live heap is a few large, reused buffers (pack,
// chunk and compression buffers), so a backup held twice their size and
// more. After every collection the soft memory limit is set just above what
// is live: collections come sooner (cheap, as those buffers hold no
// pointers), freed memory is returned promptly, and because the limit
// follows the live heap, a large index never makes the collector thrash.
// Setting GOGC or GOMEMLIMIT turns this off.
const (
	memHeadroom = 8 << 20  // bytes allowed above the live data, plus a sixteenth of it
	memFloor    = 64 << 20 // the limit never goes below this
)

var memSamples = []metrics.Sample{
	{Name: "/gc/heap/live:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

// gcSentinel is garbage as soon as it is made; its finalizer runs after the
// collection that finds it.
type gcSentinel struct{ _ *int }

func trackMemoryLimit() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		metrics.Read(memSamples)
		var v [6]uint64
		for i, s := range memSamples {
			if s.Value.Kind() == metrics.KindUint64 {
				v[i] = s.Value.Uint64()
			}
		}
		live := v[0]
		// Memory that is not heap (stacks, runtime metadata) counts
		// against the limit too.
		var other uint64
		if heap := v[2] + v[3] + v[4] + v[5]; v[1] > heap {
			other = v[1] - heap
		}
		debug.SetMemoryLimit(int64(max(live+live/16+other+memHeadroom, memFloor)))
		trackMemoryLimit()
	})
}
