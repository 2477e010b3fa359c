package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cmdWarm reads the data ranges of every regular file under the given
// paths so that the page cache holds them; holes are skipped, so a sparse
// 100 GiB image costs only its data.
func cmdWarm(args []string) error {
	buf := make([]byte, 4*mib)
	for _, root := range args {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			return warmFile(path, buf)
		})
		if err != nil {
			return fmt.Errorf("warm %s: %w", root, err)
		}
	}
	return nil
}

func warmFile(path string, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	const seekData, seekHole = 3, 4
	for off := int64(0); off < st.Size(); {
		d, err := f.Seek(off, seekData)
		if err != nil {
			break // ENXIO: no data after off
		}
		h, err := f.Seek(d, seekHole)
		if err != nil {
			return err
		}
		for p := d; p < h; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), h-p)], p)
			p += int64(n)
			if err != nil {
				return err
			}
		}
		off = h
	}
	return nil
}

// result is one row of the benchmark CSV.
type result struct {
	dataset, measure, tool string
	wall                   float64 // seconds; NaN when the run failed
	cpu                    float64 // user + system seconds
	rssKiB                 float64
	load                   float64
	bytes                  float64 // NaN when not measured
	guest                  float64 // bytes the throughput refers to; 0 for none
}

// cmdReport prints the Markdown table of medians of a results CSV with the
// columns dataset,measure,tool,run,wall_s,cpu_s,peak_rss_kib,bytes,guest_bytes,load1,status.
func cmdReport(args []string) error {
	flags := flag.NewFlagSet("report", flag.ExitOnError)
	path := flags.String("csv", "", "results CSV")
	_ = flags.Parse(args)
	f, err := os.Open(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return fmt.Errorf("read %s: %w", *path, err)
	}
	if len(rows) < 1 || len(rows[0]) < 11 || rows[0][0] != "dataset" {
		return errors.New("report: not a benchmark results CSV")
	}
	type key struct{ dataset, measure string }
	var order []key
	groups := map[key]map[string][]result{}
	var tools []string
	for _, r := range rows[1:] {
		k := key{r[0], r[1]}
		if groups[k] == nil {
			groups[k] = map[string][]result{}
			order = append(order, k)
		}
		if !slices.Contains(tools, r[2]) {
			tools = append(tools, r[2])
		}
		res := result{dataset: r[0], measure: r[1], tool: r[2],
			wall: num(r[4]), cpu: num(r[5]), rssKiB: num(r[6]), bytes: num(r[7]), guest: num(r[8]), load: num(r[9])}
		if r[10] != "ok" {
			res.wall, res.cpu = math.NaN(), math.NaN()
		}
		groups[k][r[2]] = append(groups[k][r[2]], res)
	}
	// bunker first, then the others in order of appearance.
	slices.SortStableFunc(tools, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "bunker":
			return -1
		case b == "bunker":
			return 1
		}
		return 0
	})
	var hdr, sep []string
	hdr = append(hdr, "data set", "measure")
	for _, t := range tools {
		hdr = append(hdr, t+" s")
	}
	if len(tools) == 2 {
		hdr = append(hdr, "speed-up")
	}
	for _, t := range tools {
		hdr = append(hdr, t+" CPU s")
	}
	for _, t := range tools {
		hdr = append(hdr, t+" MiB/s")
	}
	for _, t := range tools {
		hdr = append(hdr, t+" RSS MiB")
	}
	for _, t := range tools {
		hdr = append(hdr, t+" stored MiB")
	}
	hdr = append(hdr, "load")
	for range hdr {
		sep = append(sep, "---")
	}
	fmt.Println("| " + strings.Join(hdr, " | ") + " |")
	fmt.Println("|" + strings.Join(sep, "|") + "|")
	for _, k := range order {
		g := groups[k]
		cells := []string{k.dataset, k.measure}
		walls := map[string]float64{}
		for _, t := range tools {
			w, n, total := median(g[t], func(r result) float64 { return r.wall })
			walls[t] = w
			cells = append(cells, fmtRuns(w, n, total, 2))
		}
		if len(tools) == 2 {
			a, b := walls[tools[0]], walls[tools[1]]
			if math.IsNaN(a) || math.IsNaN(b) || a == 0 {
				cells = append(cells, "")
			} else {
				cells = append(cells, fmt.Sprintf("%.2fx", b/a))
			}
		}
		for _, t := range tools {
			m, n, total := median(g[t], func(r result) float64 { return r.cpu })
			cells = append(cells, fmtRuns(m, n, total, 2))
		}
		for _, t := range tools {
			w := walls[t]
			if len(g[t]) == 0 || g[t][0].guest == 0 || math.IsNaN(w) || w == 0 {
				cells = append(cells, "")
				continue
			}
			cells = append(cells, fmt.Sprintf("%.0f", g[t][0].guest/w/mib))
		}
		for _, t := range tools {
			m, n, _ := median(g[t], func(r result) float64 { return r.rssKiB })
			cells = append(cells, fmtRuns(m/1024, n, n, 0))
		}
		for _, t := range tools {
			m, n, _ := median(g[t], func(r result) float64 { return r.bytes })
			cells = append(cells, fmtRuns(m/mib, n, n, 1))
		}
		var all []result
		for _, t := range tools {
			all = append(all, g[t]...)
		}
		m, n, _ := median(all, func(r result) float64 { return r.load })
		cells = append(cells, fmtRuns(m, n, n, 1))
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	return nil
}

func num(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// median of the defined values of one column; n is how many were defined,
// total how many runs there were.
func median(rs []result, col func(result) float64) (m float64, n, total int) {
	var v []float64
	for _, r := range rs {
		if x := col(r); !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN(), 0, len(rs)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], len(v), len(rs)
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, len(v), len(rs)
}

func fmtRuns(v float64, n, total, prec int) string {
	switch {
	case total == 0:
		return ""
	case n == 0:
		return "failed"
	case n < total:
		return fmt.Sprintf("%.*f (%d/%d ok)", prec, v, n, total)
	}
	return fmt.Sprintf("%.*f", prec, v)
}
