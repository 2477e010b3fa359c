package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/backup"
	"github.com/bunkerbackup/bunker/repo"
)

type backupOptions struct {
	tags          []string
	host          string
	excludes      []string
	excludeFiles  []string
	iexcludes     []string
	ifPresent     []string
	excludeCaches bool
	filesFrom     []string
	oneFileSystem bool
	parent        string
	time          string
	dryRun        bool
	disk          bool
	format        string
	names         []string
	force         bool
	compression   string
}

func newBackupCmd(g *globalOptions) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup PATH... | backup --disk SRC...",
		Short: "Back up files and directories, or disk images and block devices",
		Long: `Back up files and directories into a new snapshot. Files whose size, mtime,
ctime and inode are unchanged since the parent snapshot (by default the
latest one of the same host and paths) are not read again.

Excludes: --exclude and --iexclude (ignores case) take patterns ("*.tmp",
"/var/cache", "cache/**/*.bin"); --exclude-file reads them from a file;
--exclude-if-present NAME leaves out directories holding a file NAME;
--exclude-caches leaves out directories with a CACHEDIR.TAG. --files-from
reads the paths to back up from a file ("-": stdin), one per line.
--dry-run reads everything and stores nothing: it reports the new, changed
and unmodified files and their bytes, and with -v lists each new or changed
file (-vv lists every file, also in a real backup).

With --disk, back up disk images (raw, VMDK, VHD, VHDX, qcow2; detected by
content or forced with --format) or block devices by their guest-visible
content. An image that a hypervisor has open for writing is refused unless
--force, and the snapshot then records it as crash-consistent; a disk that
changed while it was read is recorded too. Both end the backup with a
warning and are flagged in 'bunker snapshots'.

Sources that cannot be read are reported; the snapshot is still saved,
marked incomplete, and the exit status is 3.` + repoExitStatus(helpPartial),
		Example: `  bunker backup /etc /home --tag nightly --exclude '*.tmp'
  bunker backup / --one-file-system --exclude-file /etc/bunker/excludes
  bunker backup --disk /var/lib/libvirt/images/vm1.qcow2 --name vm1
  bunker backup --disk /dev/vg0/vm2-snap --name vm2 --tag weekly
  bunker backup --dry-run -v /srv/data
  bunker backup /srv/archive --compression max
  bunker backup --files-from /etc/bunker/paths --exclude-caches --exclude-if-present .nobackup`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(o.filesFrom) > 0 {
				return nil
			}
			return minArgs(1, "at least one path (or disk source with --disk)")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := o.options(cmd)
			if err != nil {
				return err
			}
			for _, file := range o.filesFrom {
				paths, err := readFilesFrom(file, g.stdin)
				if err != nil {
					return err
				}
				args = append(args, paths...)
			}
			if len(args) == 0 {
				return usageErrorf("no paths to back up: %s named none", strings.Join(o.filesFrom, ", "))
			}
			src := backup.Sources{}
			if o.disk {
				for i, p := range args {
					ds := backup.DiskSource{Path: p, Format: o.format}
					if i < len(o.names) {
						ds.Name = o.names[i]
					}
					src.Disks = append(src.Disks, ds)
				}
			} else {
				src.Paths = args
			}
			if o.compression != "" {
				if err := repo.ValidCompression(o.compression); err != nil {
					return usageErrorf("--compression: %v", err)
				}
			}
			return g.withRepo(cmd.Context(), sharedLock, func(r *repo.Repository) error {
				if err := r.UseCompression(o.compression); err != nil {
					return err
				}
				if opts.Parent, err = g.backupParent(cmd, r, o, opts.Hostname, args); err != nil {
					return err
				}
				return g.runBackup(cmd.Context(), r, src, opts)
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.tags, "tag", nil, "add `tags` to the snapshot (comma-separated, repeatable)")
	f.StringVar(&o.host, "host", "", "record `hostname` instead of this host's name")
	f.StringArrayVarP(&o.excludes, "exclude", "e", nil, "leave out files matching `pattern` (repeatable)")
	f.StringArrayVar(&o.excludeFiles, "exclude-file", nil, "read exclude patterns from `file`, one per line (repeatable)")
	f.StringArrayVar(&o.iexcludes, "iexclude", nil, "like --exclude, but `pattern` ignores case (repeatable)")
	f.StringArrayVar(&o.ifPresent, "exclude-if-present", nil, "leave out directories that hold a file called `name` (repeatable)")
	f.BoolVar(&o.excludeCaches, "exclude-caches", false, "leave out directories marked with a CACHEDIR.TAG file (bford.info/cachedir)")
	f.StringArrayVar(&o.filesFrom, "files-from", nil, "read the paths to back up from `file`, one per line (\"-\": stdin; # comments; repeatable)")
	f.BoolVarP(&o.oneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	f.StringVar(&o.parent, "parent", "", "compare with `snapshot` instead of the latest of the same host and paths")
	f.StringVar(&o.time, "time", "", "snapshot `time` instead of now (\"2006-01-02 15:04:05\" or RFC 3339)")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "read everything, store nothing, report what would be added")
	f.StringVar(&o.compression, "compression", "", "compress new data `mode`ly for this backup: auto (fast), max (smaller, slower) or off (default: the repository's setting)")
	f.BoolVar(&o.disk, "disk", false, "the arguments are disk images or block devices")
	f.StringVar(&o.format, "format", "", "with --disk: the image `format` (raw, vmdk, vhd, vhdx, qcow2) instead of detecting it")
	f.StringArrayVar(&o.names, "name", nil, "with --disk: the disk's `name` in the snapshot, one per source in order (default: file name)")
	f.BoolVar(&o.force, "force", false, "with --disk: read an image that is in use (crash-consistent)")
	return cmd
}

// options validates the flags and turns them into backup.Options.
func (o *backupOptions) options(cmd *cobra.Command) (backup.Options, error) {
	opts := backup.Options{Hostname: o.host, OneFileSystem: o.oneFileSystem, DryRun: o.dryRun, Force: o.force, ProgramVersion: "bunker " + programVersion()}
	if !o.disk {
		for _, name := range []string{"format", "name", "force"} {
			if cmd.Flags().Changed(name) {
				return opts, usageErrorf("--%s applies to disk backups (--disk)", name)
			}
		}
	} else if len(o.excludes)+len(o.excludeFiles)+len(o.iexcludes)+len(o.ifPresent) > 0 || o.excludeCaches || o.oneFileSystem {
		return opts, usageErrorf("--exclude, --iexclude, --exclude-file, --exclude-if-present, --exclude-caches and --one-file-system apply to file backups, not --disk")
	} else if len(o.names) > len(cmd.Flags().Args()) {
		return opts, usageErrorf("%d --name flags for %d disk sources", len(o.names), len(cmd.Flags().Args()))
	}
	for _, t := range o.tags {
		for _, tag := range strings.Split(t, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				opts.Tags = append(opts.Tags, tag)
			}
		}
	}
	opts.Excludes = o.excludes
	for _, file := range o.excludeFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			return opts, fmt.Errorf("read exclude file: %w", err)
		}
		opts.Excludes = append(opts.Excludes, backup.ParseExcludeFile(b)...)
	}
	for _, p := range append(slices.Clone(opts.Excludes), o.iexcludes...) {
		if _, err := backup.Match(p, "/"); err != nil {
			return opts, usageErrorf("--exclude: %v", err)
		}
	}
	for _, name := range o.ifPresent {
		if name == "" || strings.ContainsRune(name, '/') {
			return opts, usageErrorf("--exclude-if-present %q: give a file name, not a path", name)
		}
	}
	opts.IExcludes, opts.ExcludeIfPresent, opts.ExcludeCaches = o.iexcludes, o.ifPresent, o.excludeCaches
	if o.time != "" {
		t, err := parseTime(o.time)
		if err != nil {
			return opts, usageErrorf("--time: %v", err)
		}
		opts.Time = t
	}
	return opts, nil
}

// readFilesFrom reads the paths of --files-from: one per line, "-" is
// stdin; blank lines and lines starting with "#" are ignored.
func readFilesFrom(file string, stdin io.Reader) ([]string, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read --files-from %s: %w", file, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		out = append(out, line)
	}
	return out, nil
}

// parseTime accepts "2006-01-02 15:04:05" (local time), "2006-01-02" and
// RFC 3339.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("cannot parse %q: want \"2006-01-02 15:04:05\" or RFC 3339", s)
	}
	return t, nil
}
