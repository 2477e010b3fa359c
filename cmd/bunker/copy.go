package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/transfer"
)

func newCopyCmd(g *globalOptions) *cobra.Command {
	var src copySource
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "copy --from-repo R [SNAP...]",
		Short: "Copy snapshots from another repository into this one",
		Long: `Copy snapshots from the repository named by --from-repo into the repository
(--repo). Without SNAP arguments every snapshot matching --host, --tag and
--path is copied; SNAP is an id prefix, latest or latest~N of the source.

Blob ids are keyed per repository, so the data is read from the source,
re-keyed and stored unless the destination already holds it: data shared
with earlier copies or backups is stored once. The copies keep time, host,
paths and tags. Snapshots copied before are skipped, so running copy again
copies only what is new.

The source password comes from --from-password-file, --from-password-command,
BUNKER_FROM_PASSWORD (or BUNKER_FROM_PASSWORD_FILE, _COMMAND), else a prompt
on a terminal; --from-repo defaults to BUNKER_FROM_REPOSITORY. Both
repositories are locked shared while copying.` + repoExitStatus(),
		Example: `  bunker copy -r /mnt/offsite --from-repo /srv/backup
  bunker copy -r /mnt/offsite --from-repo /srv/backup --from-password-file /etc/bunker/main.pw latest
  BUNKER_FROM_REPOSITORY=/srv/backup bunker copy -r /mnt/offsite --host web1 --tag nightly`,
		RunE: func(cmd *cobra.Command, args []string) error {
			src.resolveEnv()
			return g.withRepo(cmd.Context(), sharedLock, func(dst *repo.Repository) error {
				return g.copySnapshots(cmd.Context(), &src, dst, args, filter)
			})
		},
	}
	f := cmd.Flags()
	filter.addFlags(f)
	f.StringVar(&src.repo, "from-repo", "", "copy from the repository at `location` (env BUNKER_FROM_REPOSITORY)")
	f.StringVar(&src.passwordFile, "from-password-file", "", "read the source repository's password from `file` (env BUNKER_FROM_PASSWORD_FILE)")
	f.StringVar(&src.passwordCommand, "from-password-command", "", "run `command` for the source repository's password (env BUNKER_FROM_PASSWORD_COMMAND)")
	return cmd
}

func (g *globalOptions) copySnapshots(ctx context.Context, s *copySource, dst *repo.Repository, args []string, filter snapshotFilter) (err error) {
	src, err := s.open(ctx, g)
	if err != nil {
		return err
	}
	defer src.Close()
	if src.Config().ID == dst.Config().ID {
		return usageErrorf("the source and destination are the same repository (%s)", s.repo)
	}
	lock, err := src.Lock(ctx, false)
	if err != nil {
		return fmt.Errorf("lock source repository: %w", err)
	}
	defer func() {
		if uerr := lock.Unlock(); uerr != nil {
			g.out.warn("lock", "", fmt.Errorf("remove the source repository's lock: %w (run 'bunker unlock' on it later)", uerr))
		}
	}()
	sns, err := selectSnapshots(ctx, src, args, filter)
	if err != nil {
		return err
	}
	prog := copyProgress{g.newProgress("copying")}
	results, err := transfer.Copy(ctx, src, dst, sns, transfer.Options{Progress: prog})
	prog.done()
	g.printCopy(results)
	if err == nil && lock.Err() != nil {
		err = fmt.Errorf("refresh the source repository's lock: %w", lock.Err())
	}
	return err
}

// selectSnapshots resolves SNAP arguments in the source (all matching the
// filter when there are none), without duplicates, oldest first.
func selectSnapshots(ctx context.Context, src *repo.Repository, args []string, filter snapshotFilter) ([]*repo.Snapshot, error) {
	if len(args) == 0 {
		sns, err := filterSnapshots(ctx, src, filter)
		if err == nil && len(sns) == 0 {
			err = errors.New("no snapshot in the source repository matches the filters")
		}
		return sns, err
	}
	var sns []*repo.Snapshot
	for _, a := range args {
		sn, err := findSnapshot(ctx, src, a, filter)
		if err != nil {
			return nil, fmt.Errorf("source repository: %w", err)
		}
		if !slices.ContainsFunc(sns, func(x *repo.Snapshot) bool { return x.ID == sn.ID }) {
			sns = append(sns, sn)
		}
	}
	slices.SortStableFunc(sns, func(a, b *repo.Snapshot) int { return a.Time.Compare(b.Time) })
	return sns, nil
}

func (g *globalOptions) printCopy(results []transfer.Result) {
	var copied, skipped, blobs int
	var bytes int64
	type snapJSON struct {
		Source  string `json:"source"`
		Copy    string `json:"copy"`
		Skipped bool   `json:"skipped"`
	}
	list := []snapJSON{}
	for _, r := range results {
		list = append(list, snapJSON{r.Source.ID.String(), r.Copy.ID.String(), r.Skipped})
		when := r.Source.Time.Local().Format("2006-01-02 15:04:05")
		if r.Skipped {
			skipped++
			g.out.printf("snapshot %s (%s, %s) was copied before as %s, skipped\n", r.Source.ID.Str(), when, r.Source.Hostname, r.Copy.ID.Str())
			continue
		}
		copied++
		blobs += r.BlobsStored
		bytes += r.BytesStored
		g.out.printf("snapshot %s (%s, %s) copied as %s: %d new blob%s, %s\n", r.Source.ID.Str(), when, r.Source.Hostname,
			r.Copy.ID.Str(), r.BlobsStored, plural(r.BlobsStored), humanize.IBytes(uint64(r.BytesStored)))
	}
	if g.JSON {
		g.out.jsonLine(map[string]any{
			"message_type": "summary", "snapshots_copied": copied, "snapshots_skipped": skipped,
			"blobs_stored": blobs, "bytes_stored": bytes, "snapshots": list,
		})
		return
	}
	g.out.printf("copied %d snapshot%s, skipped %d already copied; stored %d blob%s, %s\n",
		copied, plural(copied), skipped, blobs, plural(blobs), humanize.IBytes(uint64(bytes)))
}

// copyProgress adapts progress to transfer.Progress (bytes of data blobs).
type copyProgress struct{ *progress }

func (p copyProgress) Snapshot(sn *repo.Snapshot, skip bool) {
	name := "copying " + sn.ID.Str()
	p.phase.Store(&name)
	if p.bar != nil {
		p.bar.Describe(name)
	}
}

func (p copyProgress) Blob(size int64, stored bool) { p.bytesDone.Add(size) }
