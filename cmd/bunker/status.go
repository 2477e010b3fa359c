package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/history"
	"github.com/bunkerbackup/bunker/job"
)

// errOverdue makes "bunker status" exit 1 when a job is overdue.
var errOverdue = errors.New("overdue")

// defaultMaxAge derives a job's allowed age from its schedule: two periods
// plus the start window, so one missed run is tolerated.
func defaultMaxAge(j *job.Job, now time.Time) time.Duration {
	if j.Schedule == nil {
		return 0
	}
	a := j.Schedule.Next(now)
	b := j.Schedule.Next(a)
	if a.IsZero() || b.IsZero() {
		return 0
	}
	return 2*b.Sub(a) + j.Schedule.Window
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	var (
		maxAge     string
		prometheus string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Per job: last good backup, its age against the allowed maximum, next run",
		Long: `For every job of the config file show the last good (successful) run from the
local history, its age, the allowed maximum age and the next run. A job is
overdue when it is enabled and its last good run is older than its max-age
setting, else --max-age, else twice its schedule's period plus its window.
The exit status is 1 when any job is overdue, for monitoring systems.

--prometheus writes the same facts as a node_exporter textfile, atomically.` + exitStatusHelp(),
		Example: `  bunker status
  bunker status --max-age 26h || mail -s "backups overdue" root
  bunker status --prometheus /var/lib/node_exporter/textfile/bunker.prom`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var flagAge time.Duration
			if maxAge != "" {
				d, err := history.ParseAge(maxAge)
				if err != nil {
					return usageErrorf("--max-age: %v", err)
				}
				flagAge = d
			}
			cfg, err := g.loadJobs()
			if err != nil {
				return err
			}
			log := historyLog()
			res, err := log.ReadAll(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			var expect []history.Expect
			for _, j := range cfg.Jobs {
				e := history.Expect{Job: j.Name, Enabled: j.Enabled, MaxAge: j.MaxAge}
				if e.MaxAge == 0 {
					e.MaxAge = flagAge
				}
				if e.MaxAge == 0 {
					e.MaxAge = defaultMaxAge(j, now)
				}
				if j.Schedule != nil && j.Enabled {
					e.Next = j.Schedule.Next(now)
				}
				expect = append(expect, e)
			}
			sts := history.Evaluate(res.Records, expect, now)
			if prometheus != "" {
				if err := history.WritePrometheus(prometheus, sts); err != nil {
					return err
				}
			}
			if g.JSON {
				if err := history.WriteStatusJSON(g.stdout, sts); err != nil {
					return err
				}
			} else if !g.Quiet {
				if err := history.WriteStatusTable(g.stdout, sts, time.Local); err != nil {
					return err
				}
			}
			if history.AnyOverdue(sts) {
				var names []string
				for _, s := range sts {
					if s.Overdue {
						names = append(names, s.Job)
					}
				}
				jobs := "jobs"
				if len(names) == 1 {
					jobs = "job"
				}
				return withHint(fmt.Errorf("%d %s %w: %s", len(names), jobs, errOverdue, strings.Join(names, ", ")), "see 'bunker history --job NAME' for what went wrong")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&maxAge, "max-age", "", "allowed `age` of a job's last good run (26h, 2d) for jobs without a max-age setting")
	f.StringVar(&prometheus, "prometheus", "", "also write a node_exporter textfile to `file`")
	return cmd
}
