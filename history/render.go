package history

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
)

// WriteTable writes records as an aligned table, times in loc.
func WriteTable(w io.Writer, recs []Record, loc *time.Location) error {
	return writeTable(w, recs, loc, false)
}

// WriteHostTable is WriteTable with a HOST column, for records of several
// hosts (a repository's history).
func WriteHostTable(w io.Writer, recs []Record, loc *time.Location) error {
	return writeTable(w, recs, loc, true)
}

func writeTable(w io.Writer, recs []Record, loc *time.Location, host bool) error {
	if loc == nil {
		loc = time.Local
	}
	tw := newTable(w)
	hostCol := func(s string) string {
		if host {
			return s + "\t"
		}
		return ""
	}
	fmt.Fprintln(tw, "START\t"+hostCol("HOST")+"KIND\tJOB\tSTATUS\tDURATION\tBYTES\tSNAPSHOT\tTARGET\tERROR")
	for _, r := range recs {
		snap := r.Snapshot
		if len(snap) > 8 {
			snap = snap[:8]
		}
		bytes := ""
		if r.Bytes > 0 {
			bytes = humanize.IBytes(uint64(r.Bytes))
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Start.In(loc).Format("2006-01-02 15:04:05"), hostCol(dash(oneLine(r.Host, 30))), r.Kind, dash(r.Job), r.Status,
			FormatDuration(r.Elapsed()), dash(bytes), dash(snap), dash(oneLine(r.Target, 40)), oneLine(r.Error, 80))
	}
	return tw.Flush()
}

// trimmedTable is a tabwriter whose output loses the padding after an
// empty last column.
type trimmedTable struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func newTable(w io.Writer) *trimmedTable {
	t := &trimmedTable{out: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	return t
}

// Flush writes the table.
func (t *trimmedTable) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(t.buf.String(), "\n") {
		if rest, ok := strings.CutSuffix(l, "\n"); ok {
			b.WriteString(strings.TrimRight(rest, " ") + "\n")
		} else {
			b.WriteString(l)
		}
	}
	t.buf.Reset()
	_, err := io.WriteString(t.out, b.String())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps the first line of s, cut to max runes.
func oneLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// FormatDuration renders a duration for people: "850ms", "42s", "3m05s",
// "2h01m".
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	default:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	}
}

// CSVHeader is the first row of WriteCSV.
var CSVHeader = []string{"kind", "job", "target", "start", "end", "duration_seconds", "status", "bytes", "snapshot", "snapshots", "error", "host", "id"}

// WriteCSV writes records as RFC 4180 CSV with a header row; times are
// RFC 3339 in UTC.
func WriteCSV(w io.Writer, recs []Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, r := range recs {
		end := ""
		if !r.End.IsZero() {
			end = r.End.UTC().Format(time.RFC3339)
		}
		row := []string{
			string(r.Kind), r.Job, r.Target, r.Start.UTC().Format(time.RFC3339), end,
			strconv.FormatFloat(r.Elapsed().Seconds(), 'f', 3, 64), string(r.Status),
			strconv.FormatInt(r.Bytes, 10), r.Snapshot, strconv.Itoa(r.Snapshots), r.Error,
			r.Host, r.ID,
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes records as one JSON array (the line format per element).
func WriteJSON(w io.Writer, recs []Record) error {
	if recs == nil {
		recs = []Record{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(recs)
}
