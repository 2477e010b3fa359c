//go:build !windows

package raw

// devicePathError returns nil: outside Windows, devices are recognised by
// their file mode, not their name.
func devicePathError(path string) error { return nil }
