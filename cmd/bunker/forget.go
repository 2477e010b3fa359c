package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/retention"
)

// countFlag is a keep count: a number or "unlimited".
type countFlag struct{ n *int }

func (c countFlag) String() string {
	if c.n == nil || *c.n == 0 {
		return ""
	}
	if *c.n == retention.Unlimited {
		return "unlimited"
	}
	return strconv.Itoa(*c.n)
}

func (c countFlag) Set(s string) error {
	if s == "unlimited" {
		*c.n = retention.Unlimited
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a number or unlimited, not %q", s)
	}
	if n < 0 {
		return fmt.Errorf("negative count %d", n)
	}
	*c.n = n
	return nil
}

func (c countFlag) Type() string { return "n" }

// durationFlag is a retention.Duration flag.
type durationFlag struct{ d *retention.Duration }

func (f durationFlag) String() string {
	if f.d == nil || f.d.IsZero() {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := retention.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (f durationFlag) Type() string { return "duration" }

// everyFlag collects --keep-within-every values.
type everyFlag struct{ l *[]retention.Every }

func (f everyFlag) String() string {
	if f.l == nil {
		return ""
	}
	var s []string
	for _, e := range *f.l {
		s = append(s, e.String())
	}
	return strings.Join(s, " ")
}

func (f everyFlag) Set(s string) error {
	e, err := retention.ParseEvery(s)
	if err != nil {
		return err
	}
	*f.l = append(*f.l, e)
	return nil
}

func (f everyFlag) Type() string { return "within:width" }

// tagListFlag collects --keep-tag values.
type tagListFlag struct{ l *[]retention.TagList }

func (f tagListFlag) String() string {
	if f.l == nil {
		return ""
	}
	var s []string
	for _, t := range *f.l {
		s = append(s, t.String())
	}
	return strings.Join(s, " ")
}

func (f tagListFlag) Set(s string) error {
	l, err := retention.ParseTagList(s)
	if err != nil {
		return err
	}
	*f.l = append(*f.l, l)
	return nil
}

func (f tagListFlag) Type() string { return "tags" }

// addPolicyFlags adds the keep-* flags of a retention policy.
func addPolicyFlags(fs *pflag.FlagSet, p *retention.Policy) {
	fs.VarP(countFlag{&p.Last}, "keep-last", "l", "keep the `n` newest snapshots (or unlimited)")
	fs.VarP(countFlag{&p.Hourly}, "keep-hourly", "H", "keep the newest snapshot of each of the last `n` hours with snapshots")
	fs.VarP(countFlag{&p.Daily}, "keep-daily", "d", "keep the newest snapshot of each of the last `n` days with snapshots")
	fs.VarP(countFlag{&p.Weekly}, "keep-weekly", "w", "keep the newest snapshot of each of the last `n` ISO weeks with snapshots")
	fs.VarP(countFlag{&p.Monthly}, "keep-monthly", "m", "keep the newest snapshot of each of the last `n` months with snapshots")
	fs.VarP(countFlag{&p.Yearly}, "keep-yearly", "y", "keep the newest snapshot of each of the last `n` years with snapshots")
	fs.Var(durationFlag{&p.Within}, "keep-within", "keep snapshots less than `duration` older than the newest one (e.g. 7d, 1y2m)")
	fs.Var(durationFlag{&p.WithinHourly}, "keep-within-hourly", "keep the newest snapshot of each hour within `duration`")
	fs.Var(durationFlag{&p.WithinDaily}, "keep-within-daily", "keep the newest snapshot of each day within `duration`")
	fs.Var(durationFlag{&p.WithinWeekly}, "keep-within-weekly", "keep the newest snapshot of each week within `duration`")
	fs.Var(durationFlag{&p.WithinMonthly}, "keep-within-monthly", "keep the newest snapshot of each month within `duration`")
	fs.Var(durationFlag{&p.WithinYearly}, "keep-within-yearly", "keep the newest snapshot of each year within `duration`")
	fs.Var(everyFlag{&p.Every}, "keep-within-every", "keep one snapshot per WIDTH of time within WITHIN, as `within:width` (e.g. 48h:4h; repeatable)")
	fs.Var(tagListFlag{&p.Tags}, "keep-tag", "keep snapshots with all these `tags` (comma-separated; repeatable)")
	fs.Var(durationFlag{&p.MaxAge}, "remove-older-than", "remove snapshots older than `duration` even when a keep rule matches (protection and the minimum retention still apply)")
}

// forgetJSON is the --json document of forget.
type forgetJSON struct {
	MessageType string            `json:"message_type"`
	DryRun      bool              `json:"dry_run"`
	Policy      string            `json:"policy,omitempty"`
	Groups      []forgetGroupJSON `json:"groups"`
	Kept        int               `json:"kept"`
	Removed     []string          `json:"removed"`
	// Guarded lists the snapshots the policy or the ids would remove but a
	// guarantee keeps (protection, minimum retention, newest of its group).
	Guarded []string   `json:"guarded"`
	Refused int        `json:"refused_groups"`
	Prune   *pruneJSON `json:"prune,omitempty"`

	byID    bool     // forget by id: a guarded snapshot is an error
	reasons []string // the guarantees that kept the guarded snapshots
}

type forgetGroupJSON struct {
	Key       retention.GroupKey   `json:"key"`
	Refused   string               `json:"refused,omitempty"`
	Snapshots []forgetDecisionJSON `json:"snapshots"`
}

type forgetDecisionJSON struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Keep    bool      `json:"keep"`
	Guarded bool      `json:"guarded"`
	Reasons []string  `json:"reasons"`
}

func newForgetCmd(g *globalOptions) *cobra.Command {
	var (
		policy    retention.Policy
		filter    snapshotFilter
		groupBy   string
		allow     bool
		dryRun    bool
		doPrune   bool
		maxUnused string
	)
	cmd := &cobra.Command{
		Use:   "forget [SNAP...]",
		Short: "Remove snapshots by a retention policy or by id",
		Long: `Remove snapshots, either those that a retention policy does not keep or the
snapshots given by id. The data they used stays until 'bunker prune' (or
--prune) removes what no snapshot references.

The policy is applied to each group of snapshots separately (--group-by,
default host,paths; a disk is identified by its name, and a job's snapshots
by the job name). Calendar rules keep the newest snapshot of each hour, day,
ISO week, month or year in the snapshot's local time; --keep-within
durations count back from the group's newest snapshot; all rules combine:
a snapshot is kept when any rule keeps it. Durations are numbers with the
units y, m (months), w, d and h: 30d, 2w, 1y2m3d4h.

Whatever the policy says:
  - a snapshot younger than the repository's minimum retention period
    ('bunker config min-retention') is never removed, by policy or by id;
  - a protected snapshot ('bunker protect') is never removed;
  - the newest snapshot of a group is kept unless --allow-empty, and so is
    the newest of each host and path set (disk, job) when the groups are
    wider (--group-by tags, or '');
  - a group of which the policy would keep nothing is left alone (and the
    command exits 1) unless --allow-empty.
A snapshot named by id that a guarantee keeps is an error: the others named
are removed, then the command names the ones it kept, and why, and exits 1.
A policy run that a guarantee stops from removing some snapshots says so
and exits 0.

--dry-run shows every snapshot with keep or remove and the reasons; it takes
only a shared lock, so it runs while backups do. It exits as the same
command without --dry-run would.` + repoExitStatus(),
		Example: `  bunker forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run
  bunker forget --keep-within 30d --keep-tag monthly --prune
  bunker forget --keep-within 24h --keep-within-every 48h:4h --keep-tag bookmark --remove-older-than 4w
  bunker forget 1a2b3c4d`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hasPolicy := !policy.Empty() || !policy.MaxAge.IsZero()
			switch {
			case len(args) > 0 && hasPolicy:
				return usageErrorf("give either snapshot ids or a policy (--keep-*), not both")
			case len(args) == 0 && !hasPolicy:
				return usageErrorf("no policy given: use --keep-last, --keep-daily, --keep-within ... or name snapshots to forget")
			}
			if hasPolicy {
				if err := policy.Validate(); err != nil {
					return usageErrorf("%v", err)
				}
			}
			by, err := retention.ParseGroupBy(groupBy)
			if err != nil {
				return usageErrorf("--group-by: %v", err)
			}
			limit, err := prune.ParseLimit(maxUnused)
			if err != nil {
				return usageErrorf("--max-unused: %v", err)
			}
			return g.withRepoRetry(ctx, !dryRun, func(r *repo.Repository) error {
				snaps, err := filterSnapshots(ctx, r, filter)
				if err != nil {
					return err
				}
				opts, protections, err := retentionOptions(ctx, r, by)
				if err != nil {
					return err
				}
				opts.AllowEmpty = allow
				var res *retention.Result
				if hasPolicy {
					res, err = retention.Apply(snaps, policy, opts)
				} else {
					var ids []repo.ID
					for _, a := range args {
						sn, err := findSnapshot(ctx, r, a, filter)
						if err != nil {
							return err
						}
						ids = append(ids, sn.ID)
					}
					res, err = retention.Forget(snaps, ids, opts)
				}
				if err != nil {
					return err
				}
				doc := forgetDocument(res, dryRun)
				doc.byID = !hasPolicy
				if hasPolicy {
					doc.Policy = policy.String()
				}
				if !dryRun {
					if err := removeSnapshots(ctx, r, res.Remove(), protections); err != nil {
						return err
					}
				}
				if doPrune && !dryRun && len(doc.Removed) > 0 {
					pj, err := runPrune(ctx, g, r, limit, false)
					if err != nil {
						return err
					}
					doc.Prune = pj
				}
				if err := g.quietDocument(doc, func(w io.Writer) error { return printForget(w, doc) }); err != nil {
					return err
				}
				if n := len(res.Refused()); n > 0 {
					return withHint(fmt.Errorf("forget refused %s: %s", count(n, "group"), res.Refused()[0].Refused),
						"check the policy (a misspelt --keep-tag keeps nothing), or add --allow-empty to remove them")
				}
				if !hasPolicy {
					return notForgotten(res, dryRun)
				}
				return nil
			})
		},
	}
	fs := cmd.Flags()
	addPolicyFlags(fs, &policy)
	filter.addFlags(fs)
	fs.StringVarP(&groupBy, "group-by", "g", retention.DefaultGroupBy.String(), "group snapshots by these `fields` (host, paths, tags; empty: one group)")
	fs.BoolVar(&allow, "allow-empty", false, "let the policy remove every snapshot of a group, the newest included")
	fs.BoolVarP(&dryRun, "dry-run", "n", false, "show what would be removed, and why, without removing anything")
	fs.BoolVar(&doPrune, "prune", false, "run prune afterwards when snapshots were removed")
	fs.StringVar(&maxUnused, "max-unused", prune.DefaultMaxUnused.String(), "with --prune: unused data to tolerate (`limit`: 5%, 500M, unlimited)")
	return cmd
}

// retentionOptions reads what retention needs from the repository: the
// minimum retention period and the protections.
func retentionOptions(ctx context.Context, r *repo.Repository, by retention.GroupBy) (retention.Options, []*repo.Protection, error) {
	now := time.Now()
	opts := retention.Options{Now: now, GroupBy: by}
	if s := r.Config().MinRetention; s != "" {
		d, err := retention.ParseDuration(s)
		if err != nil {
			return opts, nil, fmt.Errorf("repository minimum retention: %w", err)
		}
		opts.MinRetention = d
	}
	ps, err := r.Protections(ctx)
	if err != nil {
		return opts, nil, withHint(fmt.Errorf("read protections: %w", err), "run 'bunker check'; forget does not run while a protection cannot be read")
	}
	opts.Protected = repo.ProtectedSnapshots(ps, now)
	return opts, ps, nil
}

// removeSnapshots removes the snapshots, then the expired protections of
// the removed ones.
func removeSnapshots(ctx context.Context, r *repo.Repository, rm []*repo.Snapshot, ps []*repo.Protection) error {
	gone := make(map[repo.ID]bool)
	for _, sn := range rm {
		if err := r.RemoveSnapshot(ctx, sn.ID); err != nil {
			return err
		}
		gone[sn.ID] = true
	}
	for _, p := range ps {
		if gone[p.Snapshot] {
			if err := r.RemoveProtection(ctx, p.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// notForgotten is the error of a forget by id that kept some of the
// snapshots named: "snapshot 1a2b3c4d not removed: protected", with hints
// on how to lift each guarantee that applied.
func notForgotten(res *retention.Result, dryRun bool) error {
	kept := res.Guarded()
	if len(kept) == 0 {
		return nil
	}
	verb := "not removed"
	if dryRun {
		verb = "would not be removed"
	}
	var err error
	if len(kept) == 1 {
		d := kept[0]
		err = fmt.Errorf("snapshot %s %s: %s", d.Snapshot.ID.Str(), verb, retention.FormatReasons(d.Reasons))
	} else {
		var l []string
		for _, d := range kept {
			l = append(l, d.Snapshot.ID.Str()+": "+retention.FormatReasons(d.Reasons))
		}
		total := len(res.Keep()) + len(res.Remove())
		err = fmt.Errorf("%d of %s %s: %s", len(kept), count(total, "snapshot"), verb, strings.Join(l, "; "))
	}
	// The innermost hint prints last: wrap in reverse.
	kinds := guaranteeKinds(kept)
	slices.Reverse(kinds)
	for _, r := range kinds {
		switch {
		case strings.HasPrefix(r, retention.ReasonProtected):
			err = withHint(err, "'bunker unprotect SNAP' ends a protection")
		case strings.HasPrefix(r, retention.ReasonMinRetention):
			err = withHint(err, "the minimum retention period is a repository setting: see 'bunker config min-retention'")
		}
	}
	return err
}

// guaranteeKinds returns the distinct guarantees behind the decisions, in
// order of first appearance: "protected", "min-retention (younger than
// 30d)", "last snapshot of its group" ("protected until ..." counts as
// "protected").
func guaranteeKinds(ds []retention.Decision) []string {
	var out []string
	for _, d := range ds {
		for _, r := range d.Reasons {
			if strings.HasPrefix(r, retention.ReasonProtected) {
				r = retention.ReasonProtected
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func forgetDocument(res *retention.Result, dryRun bool) forgetJSON {
	doc := forgetJSON{MessageType: "summary", DryRun: dryRun, Groups: []forgetGroupJSON{}, Removed: []string{}, Guarded: []string{}}
	for _, grp := range res.Groups {
		gj := forgetGroupJSON{Key: grp.Key, Refused: grp.Refused}
		for _, d := range grp.Decisions {
			reasons := d.Reasons
			if reasons == nil {
				reasons = []string{}
			}
			gj.Snapshots = append(gj.Snapshots, forgetDecisionJSON{ID: d.Snapshot.ID.String(), ShortID: d.Snapshot.ID.Str(), Time: d.Snapshot.Time, Keep: d.Keep, Guarded: d.Guarded, Reasons: reasons})
			if d.Keep {
				doc.Kept++
			} else {
				doc.Removed = append(doc.Removed, d.Snapshot.ID.String())
			}
			if d.Guarded {
				doc.Guarded = append(doc.Guarded, d.Snapshot.ID.String())
			}
		}
		if grp.Refused != "" {
			doc.Refused++
		}
		doc.Groups = append(doc.Groups, gj)
	}
	doc.reasons = guaranteeKinds(res.Guarded())
	return doc
}

func printForget(w io.Writer, doc forgetJSON) error {
	if doc.Policy != "" {
		fmt.Fprintf(w, "policy: %s\n", doc.Policy)
	}
	for _, grp := range doc.Groups {
		switch k := grp.Key.String(); k {
		case "all snapshots":
			fmt.Fprintf(w, "\nall snapshots:\n")
		case "no tags":
			fmt.Fprintf(w, "\nsnapshots without tags:\n")
		default:
			fmt.Fprintf(w, "\nsnapshots of %s:\n", k)
		}
		if grp.Refused != "" {
			fmt.Fprintf(w, "refused: %s\n", grp.Refused)
		}
		rows := make([][]string, 0, len(grp.Snapshots))
		for _, d := range grp.Snapshots {
			v := "remove"
			if d.Keep {
				v = "keep"
			}
			rows = append(rows, []string{d.ShortID, d.Time.Local().Format(timeFormat), v, strings.Join(d.Reasons, ", ")})
		}
		if err := table(w, []string{"ID", "Time", "Action", "Reasons"}, rows); err != nil {
			return err
		}
	}
	verb := "removed"
	if doc.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(w, "\nkeep %s, %s %d\n", count(doc.Kept, "snapshot"), verb, len(doc.Removed))
	if n := len(doc.Guarded); n > 0 && !doc.byID {
		fmt.Fprintf(w, "%s that the policy would remove %s kept by a guarantee: %s\n", count(n, "snapshot"), isAre(n), strings.Join(doc.reasons, ", "))
	}
	if doc.Prune != nil {
		fmt.Fprintln(w)
		return printPrune(w, doc.Prune)
	}
	return nil
}

// withRepoRetry is withRepo with the exclusive or shared lock (retried for
// up to --retry-lock while another process holds a conflicting one).
func (g *globalOptions) withRepoRetry(ctx context.Context, exclusive bool, fn func(r *repo.Repository) error) error {
	if exclusive {
		return g.withRepo(ctx, exclusiveLock, fn)
	}
	return g.withRepo(ctx, sharedLock, fn)
}

// quietDocument is printer.document, except that --quiet suppresses the
// human output (the JSON document is always written).
func (g *globalOptions) quietDocument(v any, text func(w io.Writer) error) error {
	if g.Quiet && !g.JSON {
		return nil
	}
	return g.out.document(v, text)
}
