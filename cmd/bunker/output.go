package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"
)

// printer renders everything a command says. Human text goes to stdout,
// warnings and errors to stderr; with --json, status and summary lines go
// to stdout and error lines to stderr, one JSON object per line.
type printer struct{ g *globalOptions }

// printf writes human output to stdout unless --quiet or --json.
func (p *printer) printf(format string, args ...any) {
	if p.g.Quiet {
		return
	}
	fmt.Fprintf(p.g.stdout, format, args...)
}

// verbosef writes a message when -v was given level times or more; with
// --json it becomes a verbose_status line.
func (p *printer) verbosef(level int, format string, args ...any) {
	if p.g.Verbose < level {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if p.g.JSON {
		p.jsonLine(struct {
			MessageType string `json:"message_type"`
			Message     string `json:"message"`
		}{"verbose_status", msg})
		return
	}
	if !p.g.Quiet {
		fmt.Fprintln(p.g.stderr, msg)
	}
}

// warn reports a non-fatal problem with item (a path, may be empty) on
// stderr: "bunker: warning: ..." or a JSON error line.
func (p *printer) warn(during, item string, err error) {
	if p.g.JSON {
		p.jsonTo(p.g.stderr, map[string]any{
			"message_type": "error",
			"error":        map[string]string{"message": err.Error()},
			"during":       during,
			"item":         item,
		})
		return
	}
	msg := err.Error()
	if item != "" && !strings.Contains(msg, item) {
		msg = displayPath(item) + ": " + msg
	}
	fmt.Fprintf(p.g.stderr, "bunker: warning: %s\n", msg)
}

// jsonLine writes v as one JSON line to stdout.
func (p *printer) jsonLine(v any) { p.jsonTo(p.g.stdout, v) }

func (p *printer) jsonTo(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(p.g.stderr, "bunker: error: encode JSON: %v\n", err)
		return
	}
	w.Write(append(b, '\n'))
}

// document writes a listing command's result: v as one indented JSON
// document with --json, else whatever text renders.
func (p *printer) document(v any, text func(w io.Writer) error) error {
	if p.g.JSON {
		enc := json.NewEncoder(p.g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(p.g.stdout)
}

// table writes rows as aligned columns under a header line.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// count formats a number and a noun in agreement with it: count(1,
// "file") is "1 file", count(3, "file") "3 files", count(0, "file") "0
// files". An irregular plural follows the noun: count(2, "directory",
// "directories").
func count[N ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](n N, noun string, pluralNoun ...string) string {
	return fmt.Sprintf("%d %s", n, nounFor(n, noun, pluralNoun...))
}

// nounFor is the noun alone, in agreement with n (see count).
func nounFor[N ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](n N, noun string, pluralNoun ...string) string {
	if n == 1 {
		return noun
	}
	if len(pluralNoun) > 0 {
		return pluralNoun[0]
	}
	return noun + "s"
}

// plural is the suffix "s" unless n is 1 (prefer count).
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// isAre is "is" for 1, "are" otherwise.
func isAre(n int) string { return nounFor(n, "is", "are") }

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// showProgress decides whether a progress bar may be drawn: stderr is a
// terminal, TERM is not dumb, and neither --quiet, --json nor --no-progress.
func (g *globalOptions) showProgress() bool {
	return !g.Quiet && !g.JSON && !g.NoProgress && os.Getenv("TERM") != "dumb" && isTerminal(g.stderr)
}
