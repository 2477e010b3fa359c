package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/check"
)

type checkJSON struct {
	MessageType string `json:"message_type"`
	OK          bool   `json:"ok"`
	Errors      int    `json:"errors"`
	Warnings    int    `json:"warnings"`
	*check.Result
}

func newCheckCmd(g *globalOptions) *cobra.Command {
	var opts check.Options
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the repository",
		Long: `Verify the structure of the repository. Plain check reads every small file
and only the headers of the packs:
  - every key, index, snapshot, lock and protection file is read whole and
    must be named by the hash of its content;
  - every pack the index names exists, and its header (read from the end
    of the pack) lists the same blobs as the index; packs that no index
    names are reported as warnings;
  - every tree and data blob every snapshot needs is in the index, and
    every tree the snapshots use is loaded, decrypted and decoded.
Plain check does NOT read the blob data inside the packs: a flipped byte in
the body of a pack goes unnoticed until --read-data.

--read-data also reads every pack whole, decrypts every blob and checks it
against its id; --read-data-subset does so for a part of the packs: "n/m"
(group n of m) or "P%" (a random P percent).

Damaged or missing data is traced to the snapshots, files and disks that use
it. Errors make the exit status 1; warnings (such as unreferenced packs left
by an interrupted backup or prune) do not. With -q nothing is printed unless there is
a problem.` + repoExitStatus(),
		Example: `  bunker check
  bunker check --read-data
  bunker check --read-data-subset 1/7   # a seventh of the packs, e.g. one per weekday
  bunker check --read-data-subset 10%`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ReadDataSubset != "" {
				if opts.ReadData {
					return usageErrorf("--read-data and --read-data-subset are mutually exclusive")
				}
				if _, err := check.ParseSubset(opts.ReadDataSubset); err != nil {
					return usageErrorf("--read-data-subset: %v", err)
				}
			}
			return g.withRepo(cmd.Context(), sharedLock, func(r *repo.Repository) error {
				prog := g.newItemProgress("checking")
				opts.Progress = itemProgress{prog}
				res, err := check.Check(cmd.Context(), r, opts)
				prog.done()
				if err != nil {
					return err
				}
				if res.Problems == nil {
					res.Problems = []check.Problem{}
				}
				if res.Affected == nil {
					res.Affected = []check.Use{}
				}
				doc := checkJSON{MessageType: "summary", OK: res.OK(), Errors: res.Errors(), Warnings: res.Warnings(), Result: res}
				if err := g.out.document(doc, func(w io.Writer) error { return printCheck(w, res, g.Quiet) }); err != nil {
					return err
				}
				if !res.OK() {
					return withHint(fmt.Errorf("check found %s in repository %s", count(res.Errors(), "error"), r.Backend().Location()),
						"'bunker repair index' rebuilds a damaged or incomplete index, 'bunker repair snapshots' then saves copies of the affected snapshots without the lost data; back up the affected sources again so that new snapshots are whole")
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&opts.ReadData, "read-data", false, "read and verify every blob")
	cmd.Flags().StringVar(&opts.ReadDataSubset, "read-data-subset", "", "read and verify a `subset` of the packs: n/m or P%")
	return cmd
}

// printCheck prints the problems, the affected snapshots and (unless
// quiet) a summary.
func printCheck(w io.Writer, res *check.Result, quiet bool) error {
	for _, p := range res.Problems {
		fmt.Fprintln(w, p.String())
	}
	for _, u := range res.Affected {
		fmt.Fprintf(w, "affected: snapshot %s: %s (%d blob%s)\n", u.Snapshot.Str(), displayPath(u.Path), len(u.Blobs), plural(len(u.Blobs)))
	}
	if quiet {
		return nil
	}
	read := ""
	if res.PacksRead > 0 {
		read = fmt.Sprintf(", read %s", count(res.PacksRead, "pack"))
	}
	fmt.Fprintf(w, "checked %s, %s, %s%s\n", count(res.Snapshots, "snapshot"), count(res.Packs, "pack"), count(res.Blobs, "blob"), read)
	var err error
	if res.OK() && res.Warnings() == 0 {
		_, err = fmt.Fprintln(w, "no errors were found")
	} else {
		_, err = fmt.Fprintf(w, "%d error%s, %d warning%s\n", res.Errors(), plural(res.Errors()), res.Warnings(), plural(res.Warnings()))
	}
	return err
}
