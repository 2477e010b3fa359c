package schedule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Standard install directories (relative to the root).
const (
	SystemUnitDir = "/etc/systemd/system"
	CronDir       = "/etc/cron.d"
	// SystemManifest records what a system-wide install wrote.
	SystemManifest = "/var/lib/bunker/schedule-manifest.json"
)

// UserUnitDir is the user unit directory under a home directory.
func UserUnitDir(home string) string { return path.Join(home, ".config/systemd/user") }

// UserManifest is the manifest of a user install under a state directory
// ($XDG_STATE_HOME/bunker).
func UserManifest(stateDir string) string { return path.Join(stateDir, "schedule-manifest.json") }

// Manifest lists the files an install wrote.
type Manifest struct {
	Version int             `json:"version"`
	Files   []ManifestEntry `json:"files"`
	// CrontabBlock is set when a marked block was merged into a user crontab.
	CrontabBlock bool `json:"crontab_block,omitempty"`
}

// ManifestEntry is one installed file: its absolute path (as seen inside the
// root) and the SHA-256 of the content written.
type ManifestEntry struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Installer writes rendered files under Root and keeps a manifest of them.
type Installer struct {
	// Root prefixes every path ("" or "/" = the real root).
	Root string
	// Manifest is the manifest's absolute path inside Root.
	Manifest string
}

func (in Installer) abs(p string) string {
	root := in.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

// ReadManifest loads the manifest; a missing manifest is an empty one.
func (in Installer) ReadManifest() (Manifest, error) {
	var m Manifest
	data, err := os.ReadFile(in.abs(in.Manifest))
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{Version: 1}, nil
	}
	if err != nil {
		return m, fmt.Errorf("read schedule manifest: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("parse schedule manifest %s: %w", in.abs(in.Manifest), err)
	}
	for _, e := range m.Files {
		if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path {
			return m, fmt.Errorf("schedule manifest %s: bad path %q", in.abs(in.Manifest), e.Path)
		}
	}
	return m, nil
}

func (in Installer) writeManifest(m Manifest) error {
	m.Version = 1
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if len(m.Files) == 0 && !m.CrontabBlock {
		err := os.Remove(in.abs(in.Manifest))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove schedule manifest: %w", err)
		}
		return nil
	}
	return WriteFileAtomic(in.abs(in.Manifest), append(data, '\n'), 0o644)
}

// InstallResult says what an install or removal changed.
type InstallResult struct {
	Written   []string // paths (inside the root) written or rewritten
	Unchanged []string // paths already holding the same content
	Removed   []string // paths of an earlier install no longer generated
}

// Install writes files into dir (an absolute path inside the root), each
// atomically (temp file, fsync, rename). Files of an earlier install in the
// same directory that are no longer generated are removed, so the
// directory ends up holding exactly the current set. The manifest is
// updated after the files are in place.
func (in Installer) Install(dir string, files []File) (InstallResult, error) {
	var res InstallResult
	if !path.IsAbs(dir) {
		return res, fmt.Errorf("install directory %q is not absolute", dir)
	}
	m, err := in.ReadManifest()
	if err != nil {
		return res, err
	}
	want := map[string]bool{}
	var entries []ManifestEntry
	for _, f := range files {
		if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") || f.Name == "." || f.Name == ".." {
			return res, fmt.Errorf("bad file name %q", f.Name)
		}
		p := path.Join(dir, f.Name)
		sum := sha256.Sum256(f.Data)
		entries = append(entries, ManifestEntry{Path: p, SHA256: hex.EncodeToString(sum[:])})
		want[p] = true
		if old, err := os.ReadFile(in.abs(p)); err == nil && bytes.Equal(old, f.Data) {
			res.Unchanged = append(res.Unchanged, p)
			continue
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := WriteFileAtomic(in.abs(p), f.Data, mode); err != nil {
			return res, err
		}
		res.Written = append(res.Written, p)
	}
	var keep []ManifestEntry
	for _, e := range m.Files {
		if want[e.Path] {
			continue
		}
		if path.Dir(e.Path) != dir {
			keep = append(keep, e) // another directory's install
			continue
		}
		if err := os.Remove(in.abs(e.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("remove %s: %w", e.Path, err)
		}
		res.Removed = append(res.Removed, e.Path)
	}
	m.Files = append(keep, entries...)
	if err := in.writeManifest(m); err != nil {
		return res, err
	}
	return res, nil
}

// SetCrontabBlock records in the manifest whether a user crontab block is
// installed.
func (in Installer) SetCrontabBlock(installed bool) error {
	m, err := in.ReadManifest()
	if err != nil {
		return err
	}
	m.CrontabBlock = installed
	return in.writeManifest(m)
}

// Remove deletes exactly the files the manifest lists in dir ("" = every
// directory) and drops them from the manifest, which goes when it is empty.
// Files changed since the install are removed as well (they are bunker's);
// files already gone are skipped.
func (in Installer) Remove(dir string) (InstallResult, error) {
	var res InstallResult
	m, err := in.ReadManifest()
	if err != nil {
		return res, err
	}
	var left []ManifestEntry
	var firstErr error
	for _, e := range m.Files {
		if dir != "" && path.Dir(e.Path) != dir {
			left = append(left, e)
			continue
		}
		err := os.Remove(in.abs(e.Path))
		switch {
		case err == nil:
			res.Removed = append(res.Removed, e.Path)
		case errors.Is(err, fs.ErrNotExist):
		default:
			left = append(left, e)
			if firstErr == nil {
				firstErr = fmt.Errorf("remove %s: %w", e.Path, err)
			}
		}
	}
	m.Files = left
	if err := in.writeManifest(m); err != nil && firstErr == nil {
		firstErr = err
	}
	return res, firstErr
}

// WriteFileAtomic writes data to name through a temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory.
// Missing parent directories are created with mode 0755.
func WriteFileAtomic(name string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// SystemdRunning reports whether systemd is the init system under root
// (sd_booted(3): /run/systemd/system exists).
func SystemdRunning(root string) bool {
	if root == "" {
		root = "/"
	}
	fi, err := os.Stat(filepath.Join(root, "run/systemd/system"))
	return err == nil && fi.IsDir()
}

// Systemctl runs systemctl (with --user for user units), e.g.
// Systemctl(ctx, false, "daemon-reload"), and returns its output in the
// error when it fails.
func Systemctl(ctx context.Context, user bool, args ...string) error {
	if user {
		args = append([]string{"--user"}, args...)
	}
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ReadUserCrontab returns the invoking user's crontab ("crontab -l"); an
// absent crontab is empty text.
func ReadUserCrontab(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "crontab", "-l")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "no crontab for") {
			return "", nil
		}
		return "", fmt.Errorf("crontab -l: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// WriteUserCrontab replaces the invoking user's crontab ("crontab -").
func WriteUserCrontab(ctx context.Context, text string) error {
	cmd := exec.CommandContext(ctx, "crontab", "-")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("crontab -: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
