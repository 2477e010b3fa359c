package history

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Prometheus renders the job statuses in the Prometheus text exposition
// format for node_exporter's textfile collector. Per job:
//
//	bunker_job_last_success_timestamp_seconds  end of the last successful run
//	bunker_job_last_run_timestamp_seconds      start of the last run
//	bunker_job_last_run_success                1 when the last run succeeded
//	bunker_job_last_duration_seconds           duration of the last run
//	bunker_job_last_bytes_added                new data of the last successful run
//	bunker_job_snapshots                       snapshots of the job, when known
//	bunker_job_overdue                         1 when the job is overdue (monitored jobs)
func Prometheus(sts []JobStatus) []byte {
	type metric struct {
		name, help string
		value      func(JobStatus) (float64, bool)
	}
	metrics := []metric{
		{"bunker_job_last_success_timestamp_seconds", "Unix time the job's last successful run ended.",
			func(s JobStatus) (float64, bool) { return unixSeconds(endOf(s.LastGood)), s.HasGood }},
		{"bunker_job_last_run_timestamp_seconds", "Unix time the job's last run started.",
			func(s JobStatus) (float64, bool) { return unixSeconds(s.LastRun.Start), s.HasRun }},
		{"bunker_job_last_run_success", "Whether the job's last run succeeded (1) or not (0).",
			func(s JobStatus) (float64, bool) { return b2f(s.LastRun.Status == StatusSuccess), s.HasRun }},
		{"bunker_job_last_duration_seconds", "Duration of the job's last run.",
			func(s JobStatus) (float64, bool) { return s.LastRun.Elapsed().Seconds(), s.HasRun }},
		{"bunker_job_last_bytes_added", "Bytes of new data added by the job's last successful run.",
			func(s JobStatus) (float64, bool) { return float64(s.LastGood.Bytes), s.HasGood }},
		{"bunker_job_snapshots", "Snapshots of the job in the repository after its last run.",
			func(s JobStatus) (float64, bool) {
				n := s.LastRun.Snapshots
				if n == 0 {
					n = s.LastGood.Snapshots
				}
				return float64(n), n > 0
			}},
		{"bunker_job_overdue", "Whether the job's last good run is older than its maximum age.",
			func(s JobStatus) (float64, bool) { return b2f(s.Overdue), s.MaxAge > 0 && s.Enabled }},
	}
	var b bytes.Buffer
	for _, m := range metrics {
		header := false
		for _, s := range sts {
			v, ok := m.value(s)
			if !ok {
				continue
			}
			if !header {
				fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
				header = true
			}
			fmt.Fprintf(&b, "%s{job=\"%s\"} %s\n", m.name, escapeLabel(s.Job), strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	return b.Bytes()
}

func unixSeconds(t interface{ UnixMilli() int64 }) float64 {
	return float64(t.UnixMilli()) / 1000
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// WritePrometheus writes the textfile atomically: a temporary file in the
// same directory (named without the .prom suffix, so node_exporter never
// reads it half-written), fsync, rename.
func WritePrometheus(path string, sts []JobStatus) error {
	data := Prometheus(sts)
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write prometheus file %s: %w", path, withoutPath(err))
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write prometheus file %s: %w", path, withoutPath(err))
	}
	return nil
}

// withoutPath drops the file names from err, which name the temporary file
// rather than the file the user asked for.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
