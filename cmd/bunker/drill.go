package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/drill"
	"github.com/bunkerbackup/bunker/repo"
)

func newDrillCmd(g *globalOptions) *cobra.Command {
	var filter snapshotFilter
	var opts drill.Options
	cmd := &cobra.Command{
		Use:   "drill SNAP",
		Short: "Restore-test a snapshot into scratch space, verify it and time it",
		Long: `Restore everything a snapshot holds into a scratch directory, verify it,
report how long it took, and remove it again: a recovery rehearsal.

The file tree is restored and then re-read, every file compared chunk by
chunk with the snapshot. Every disk is restored to a sparse raw file (its
whole-disk digest checked while writing) and re-read; --format vmdk or vhd
also writes each disk into that container and verifies it, as a recovery to
a hypervisor would. The restore time of each item is the recovery time to
expect on this machine and storage; the verify time is reported apart. The
total counts the files and each disk once: a disk's copy in --format is
listed on its own line but not added again.

--scratch DIR (default $TMPDIR) gets a new subdirectory, removed afterwards
unless --keep. The drill refuses to start when the file system lacks the
space: the data bytes (holes stay sparse) of the largest item, or of all
items with --keep.

Every item that fails (a damaged blob, a digest that differs) is named and
the exit status is 1.` + repoExitStatus(),
		Example: `  bunker drill latest
  bunker drill latest --host web1 --scratch /srv/scratch
  bunker drill 4f3c2a1b --format vmdk --keep --scratch /var/tmp
  bunker drill latest --json | jq .restore_seconds`,
		Args: exactArgs(1, "one snapshot (an id prefix or 'latest')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch opts.Format {
			case "raw", "vmdk", "vhd":
			default:
				return usageErrorf("--format %q: want raw, vmdk or vhd", opts.Format)
			}
			return g.withRepo(cmd.Context(), sharedLock, func(r *repo.Repository) error {
				sn, err := findSnapshot(cmd.Context(), r, args[0], filter)
				if err != nil {
					return err
				}
				g.runSnapshot = sn.ID.String()
				prog := drillProgress{g.newProgress("drill")}
				opts.Progress = prog
				rep, err := drill.Run(cmd.Context(), r, sn, opts)
				prog.done()
				if err == nil {
					// The history records the restore time: the recovery
					// time to expect.
					g.runBytes, g.runDuration = rep.Bytes, rep.Restore
				}
				var se *drill.SpaceError
				if errors.As(err, &se) {
					return withHint(err, "free space there, or give a scratch directory on a larger file system with --scratch DIR")
				}
				if err != nil {
					return err
				}
				if g.JSON {
					g.out.jsonLine(drillJSON(&rep))
				} else if !g.Quiet {
					if err := printDrill(g.stdout, sn, &rep); err != nil {
						return err
					}
				}
				if !rep.OK() {
					for _, f := range rep.Failures() {
						g.out.warn("drill", "", errors.New(f))
					}
					return fmt.Errorf("drill of snapshot %s failed: %s", sn.ID.Str(), strings.Join(drillFailedItems(&rep), ", "))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	filter.addFlags(f)
	f.StringVar(&opts.Scratch, "scratch", "", "restore into a new subdirectory of `dir` (default $TMPDIR)")
	f.BoolVar(&opts.Keep, "keep", false, "keep the restored copy")
	f.StringVar(&opts.Format, "format", "raw", "also write disks as raw, vmdk or vhd and verify that container")
	return cmd
}

func drillFailedItems(rep *drill.Report) []string {
	var out []string
	for _, it := range rep.Items {
		if !it.OK() {
			out = append(out, it.Name)
		}
	}
	return out
}

func drillDuration(d time.Duration) string { return d.Round(time.Millisecond).String() }

func printDrill(w io.Writer, sn *repo.Snapshot, rep *drill.Report) error {
	fmt.Fprintf(w, "drill of snapshot %s (%s) in %s\n", sn.ID.Str(), sn.Time.Local().Format("2006-01-02 15:04:05"), rep.Dir)
	var rows [][]string
	for _, it := range rep.Items {
		files, result := "-", "verified"
		if it.Format == "" {
			files = strconv.FormatUint(it.Files, 10)
		}
		if !it.OK() {
			result = "FAILED"
		}
		rows = append(rows, []string{it.Name, humanize.IBytes(uint64(it.Size)), humanize.IBytes(uint64(it.Bytes)), files, drillDuration(it.Restore), drillDuration(it.Verify), result})
	}
	if err := table(w, []string{"item", "size", "data", "files", "restore", "verify", "result"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "total: %s, %s, %s of data: restore %s, verify %s, drill %s\n",
		count(rep.Disks, "disk"), count(rep.Files, "file"), humanize.IBytes(uint64(rep.Bytes)), drillDuration(rep.Restore), drillDuration(rep.Verify), drillDuration(rep.Total))
	if rep.Kept {
		fmt.Fprintf(w, "kept the restored copy in %s\n", rep.Dir)
	}
	var err error
	if rep.OK() {
		_, err = fmt.Fprintf(w, "drill passed: restoring this snapshot took %s\n", drillDuration(rep.Restore))
	} else {
		_, err = fmt.Fprintf(w, "drill FAILED: %s\n", strings.Join(drillFailedItems(rep), ", "))
	}
	return err
}
