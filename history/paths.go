package history

import "path/filepath"

// SystemStateDir is root's state directory.
const SystemStateDir = "/var/lib/bunker"

// StateDir is bunker's state directory (history, job locks, schedule
// manifest): $XDG_STATE_HOME/bunker when that is set (to an absolute
// path), else /var/lib/bunker for root (euid 0), else
// ~/.local/state/bunker. System units and root's cron run without
// XDG_STATE_HOME and so share /var/lib/bunker. The caller passes the
// values; nothing is read here.
func StateDir(euid int, xdgStateHome, home string) string {
	switch {
	case xdgStateHome != "" && filepath.IsAbs(xdgStateHome):
		return filepath.Join(xdgStateHome, "bunker")
	case euid == 0:
		return SystemStateDir
	}
	return filepath.Join(home, ".local", "state", "bunker")
}

// FileName is the history file's name inside the state directory.
const FileName = "history.jsonl"

// DefaultPath is the history file in StateDir.
func DefaultPath(euid int, xdgStateHome, home string) string {
	return filepath.Join(StateDir(euid, xdgStateHome, home), FileName)
}
