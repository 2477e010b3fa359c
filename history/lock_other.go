//go:build !unix

package history

import (
	"context"
	"os"
)

// Without flock, appends rely on O_APPEND writing each line at once.
func lockFile(ctx context.Context, f *os.File, exclusive bool) error { return ctx.Err() }

func unlockFile(f *os.File) {}
