package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repair"
	"github.com/bunkerbackup/bunker/repo"
)

func newRepairCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Repair a damaged repository",
		Long: `Recover from damage that 'bunker check' reports. Run them in this order:

  bunker repair index       rebuild the index from the pack headers
  bunker repair snapshots   write copies of damaged snapshots without what is lost

Both write everything new before they remove anything old, so an
interruption leaves the repository as usable as before, and running the
command again finishes the repair.` + repoExitStatus(),
		Example: `  bunker check --read-data
  bunker repair index --read-all-packs
  bunker repair snapshots --dry-run
  bunker repair snapshots --forget`,
		Args: noArgs,
	}
	cmd.AddCommand(newRepairIndexCmd(g), newRepairSnapshotsCmd(g))
	return cmd
}

// repairIndexJSON is the --json document of repair index.
type repairIndexJSON struct {
	MessageType string `json:"message_type"`
	*repair.IndexResult
}

func newRepairIndexCmd(g *globalOptions) *cobra.Command {
	var opts repair.IndexOptions
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Rebuild the index from the pack headers",
		Long: `Read the header of every pack and write a new index that lists exactly the
blobs the packs hold, replacing every index file. This mends a lost or
damaged index file (restore fails with "blob not found"), packs no index
lists, and index entries of packs that no longer exist.

A pack whose header cannot be read is reported and left alone, never
deleted: the blobs an old index file placed in it stay indexed, since their
data may be intact. Delete such a pack yourself and run 'repair index' again
to drop them.

--read-all-packs also reads every pack whole and checks every blob against
its id; damaged blobs are left out of the new index, so that 'repair
snapshots' then sees them as missing.

The new index is written first, superseding the old files; the old files are
removed last. repair index holds the exclusive lock (--dry-run: a shared
one).` + repoExitStatus(),
		Example: `  bunker repair index
  bunker repair index --read-all-packs
  bunker repair index --dry-run --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepoRetry(cmd.Context(), !opts.DryRun, func(r *repo.Repository) error {
				prog := g.newItemProgress("repair index")
				opts.Progress = itemProgress{prog}
				res, err := repair.Index(cmd.Context(), r, opts)
				prog.done()
				if err != nil {
					return withHint(err, "nothing old was removed before the new index was stored; run 'bunker repair index' again")
				}
				doc := repairIndexJSON{MessageType: "summary", IndexResult: res}
				return g.out.document(doc, func(w io.Writer) error { return printRepairIndex(w, res, g.Quiet) })
			})
		},
	}
	cmd.Flags().BoolVar(&opts.ReadAllPacks, "read-all-packs", false, "read every pack whole and leave damaged blobs out of the index")
	cmd.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "read and report, but change nothing")
	return cmd
}

func printRepairIndex(w io.Writer, res *repair.IndexResult, quiet bool) error {
	for _, p := range res.PacksDamaged {
		fmt.Fprintf(w, "damaged pack %s (%s), left alone: %s", p.ID.Str(), humanize.IBytes(uint64(p.Size)), p.Reason)
		switch {
		case p.SalvagedBlobs > 0:
			fmt.Fprintf(w, "; %s copied to a new pack\n", count(p.SalvagedBlobs, "intact blob"))
		case p.KeptBlobs > 0:
			fmt.Fprintf(w, "; %s of the old index kept\n", count(p.KeptBlobs, "blob"))
			if res.BytesRead == 0 {
				fmt.Fprintln(w, "  its blobs may be intact: 'bunker repair index --read-all-packs' copies those that verify to a new pack")
			}
		default:
			fmt.Fprintln(w)
		}
	}
	for _, p := range res.PacksMissing {
		fmt.Fprintf(w, "missing pack %s: %s dropped from the index\n", p.ID.Str(), count(p.Blobs, "blob"))
	}
	for _, b := range res.BlobsDamaged {
		fmt.Fprintf(w, "damaged blob %s in pack %s, left out of the index: %s\n", b.ID.Str(), b.Pack.Str(), b.Reason)
	}
	if res.BlobsSalvaged > 0 {
		if res.DryRun {
			fmt.Fprintf(w, "would copy %s of damaged packs into new packs\n", count(res.BlobsSalvaged, "intact blob"))
		} else {
			fmt.Fprintf(w, "copied %s of damaged packs into %s\n", count(res.BlobsSalvaged, "intact blob"), count(res.PacksWritten, "new pack"))
		}
	}
	if quiet {
		return nil
	}
	read := ""
	if res.BytesRead > 0 {
		read = fmt.Sprintf(" (read %s whole)", humanize.IBytes(uint64(res.BytesRead)))
	}
	fmt.Fprintf(w, "read %s of %s%s, %s new to the index\n", count(res.PacksRead, "pack header"),
		count(res.PacksRead+len(res.PacksDamaged), "pack"), read, count(res.PacksAdded, "pack"))
	damaged := ""
	if res.IndexFiles.Damaged > 0 {
		damaged = fmt.Sprintf(" (%d damaged)", res.IndexFiles.Damaged)
	}
	var err error
	if res.DryRun {
		_, err = fmt.Fprintf(w, "dry run: would index %s in %s, replacing %s%s\n", count(res.BlobsIndexed, "blob"),
			count(res.IndexFiles.Written, "index file"), count(res.IndexFiles.Old, "index file"), damaged)
	} else {
		_, err = fmt.Fprintf(w, "indexed %s in %s, replaced %s%s\n", count(res.BlobsIndexed, "blob"),
			count(res.IndexFiles.Written, "index file"), count(res.IndexFiles.Removed, "index file"), damaged)
	}
	return err
}

// repairSnapshotsJSON is the --json document of repair snapshots.
type repairSnapshotsJSON struct {
	MessageType string `json:"message_type"`
	*repair.SnapshotResult
}

func newRepairSnapshotsCmd(g *globalOptions) *cobra.Command {
	var (
		opts   repair.SnapshotOptions
		filter snapshotFilter
	)
	cmd := &cobra.Command{
		Use:   "snapshots [SNAP...]",
		Short: "Write copies of damaged snapshots without what is lost",
		Long: `Walk every snapshot (or the SNAPs, or those matching --host, --tag and
--path) and find what the index no longer holds. For each damaged snapshot a
repaired copy is written that leaves out what is lost:
  - a file with missing content is removed (never truncated or zero-filled);
  - a directory whose tree is missing or damaged becomes an empty directory;
  - a disk with a missing chunk list or chunk is removed. A disk is restored
    whole and checked against its digest; bunker never restores a disk with
    zeroed ranges in place of lost data, so it is not kept in the copy. The
    original snapshot still records it.
The copy keeps the original's time, host, paths and tags, gets the tag
'repaired', records the original's id, is marked incomplete and names every
removed place in its warnings. A snapshot of which nothing is left gets no
copy.

The originals are kept unless --forget is given; even then, a protected
original, or one younger than the repository's minimum retention, is kept.
'bunker prune' afterwards frees the data only the removed originals used.

Run 'bunker repair index' first: repair snapshots refuses to run while the
index does not match the packs. Damaged (rather than missing) data is found
by 'bunker check --read-data'; 'bunker repair index --read-all-packs' drops
it from the index so that repair snapshots leaves it out. repair snapshots
holds the exclusive lock (--dry-run: a shared one).` + repoExitStatus(),
		Example: `  bunker repair snapshots --dry-run
  bunker repair snapshots
  bunker repair snapshots --forget 1a2b3c4d
  bunker repair snapshots --host web1 --forget && bunker prune`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepoRetry(ctx, !opts.DryRun, func(r *repo.Repository) error {
				for _, a := range args {
					sn, err := findSnapshot(ctx, r, a, filter)
					if err != nil {
						return err
					}
					opts.IDs = append(opts.IDs, sn.ID)
				}
				opts.Filter = filter.match
				opts.Now = time.Now()
				prog := g.newItemProgress("repair snapshots")
				opts.Progress = itemProgress{prog}
				res, err := repair.Snapshots(ctx, r, opts)
				prog.done()
				if errors.Is(err, repair.ErrIndexNeedsRepair) {
					return withHint(err, "run 'bunker repair index' first")
				}
				if err != nil {
					return withHint(err, "repaired copies are written before originals are removed; run 'bunker repair snapshots' again to finish")
				}
				for _, u := range res.Unreadable {
					g.out.warn("repair", "", fmt.Errorf("left alone: %s", u.Reason))
				}
				doc := repairSnapshotsJSON{MessageType: "summary", SnapshotResult: res}
				return g.out.document(doc, func(w io.Writer) error { return printRepairSnapshots(w, res, opts.Forget, g.Quiet) })
			})
		},
	}
	filter.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.Forget, "forget", false, "remove each damaged original once its repaired copy is stored")
	cmd.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "show what would be repaired, but change nothing")
	return cmd
}

func printRepairSnapshots(w io.Writer, res *repair.SnapshotResult, forget, quiet bool) error {
	for _, rep := range res.Repaired {
		fmt.Fprintf(w, "snapshot %s of %s\n", rep.Original.Str(), rep.Time.Local().Format(timeFormat))
		for _, c := range rep.Changes {
			fmt.Fprintf(w, "  %s %s: %s\n", c.Action, displayPath(c.Path), c.Reason)
		}
		switch {
		case rep.Empty:
			fmt.Fprintln(w, "  nothing restorable is left: no repaired copy")
		case rep.Existing:
			fmt.Fprintf(w, "  repaired copy %s was written by an earlier run\n", rep.Repaired.Str())
		case rep.Repaired != nil:
			fmt.Fprintf(w, "  wrote repaired copy %s\n", rep.Repaired.Str())
		case res.DryRun:
			fmt.Fprintln(w, "  would write a repaired copy")
		}
		switch {
		case rep.Forgotten:
			fmt.Fprintln(w, "  removed the original")
		case rep.Kept != "":
			fmt.Fprintf(w, "  keeps the original: %s\n", rep.Kept)
		case forget && res.DryRun:
			fmt.Fprintln(w, "  would remove the original")
		}
	}
	if quiet {
		return nil
	}
	fmt.Fprintf(w, "checked %s: %d intact, %d damaged\n", count(res.Checked, "snapshot"), res.Intact, len(res.Repaired))
	var err error
	switch {
	case len(res.Repaired) == 0:
		_, err = fmt.Fprintln(w, "nothing to repair")
	case res.DryRun:
		_, err = fmt.Fprintln(w, "dry run: nothing was changed")
	default:
		_, err = fmt.Fprintf(w, "wrote %s, removed %s\n", count(res.Written, "repaired snapshot"), count(res.Forgotten, "original"))
		if err == nil && !forget {
			_, err = fmt.Fprintln(w, "the damaged originals were kept: run again with --forget to remove them, then 'bunker prune'")
		}
	}
	return err
}
