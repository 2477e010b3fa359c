package job

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bunkerbackup/bunker/history"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/retention"
	"github.com/bunkerbackup/bunker/schedule"
)

// Config is a parsed job file.
type Config struct {
	// File is the path the config was read from ("" when parsed from memory).
	File string
	// Repository, PasswordFile and PasswordCommand are the repository
	// settings; flags and environment variables take precedence.
	Repository      string
	PasswordFile    string
	PasswordCommand string
	CacheDir        string
	// Jobs in the order of the file.
	Jobs []*Job
}

// Job is one named job.
type Job struct {
	Name string
	// Line is where the job is defined in the file.
	Line int

	Paths    []string
	Excludes []string
	Disks    []Disk
	Tags     []string

	// Schedule is nil for a job that only runs by hand.
	Schedule *schedule.Schedule
	// Retention is applied to the job's snapshots after each backup; an
	// empty policy means no forget.
	Retention retention.Policy
	// Prune, Check and Drill say how often those run after a backup.
	Prune, Check, Drill Cadence
	Hooks               Hooks
	Notify              Notify
	Enabled             bool
	// Compression is the job's backup compression ("auto", "max", "off";
	// "" = the repository's default).
	Compression string
	// MaxAge is how old the job's last good run may get before
	// "bunker status" calls it overdue (0 = the --max-age flag decides).
	MaxAge time.Duration
}

// Disk is a disk image or block device source.
type Disk struct {
	Path   string
	Name   string // name in the snapshot ("" = derived from the path)
	Format string // "" = detect
}

// Hooks are commands around a job run. After always runs; OnSuccess or
// OnFailure runs depending on the outcome.
type Hooks struct {
	Before, After, OnSuccess, OnFailure []Hook
}

// Hook is one shell command with a timeout.
type Hook struct {
	Command string
	Timeout time.Duration
	Line    int
}

// DefaultHookTimeout applies when a hook names none.
const DefaultHookTimeout = 15 * time.Minute

// Notify says whom to tell about a run.
type Notify struct {
	// Command runs after every run with BUNKER_JOB, BUNKER_STATUS, ... set.
	Command string
	// URL is a healthchecks-style ping URL: URL/start, URL, URL/fail.
	URL string
	// Timeout bounds the command and each HTTP request.
	Timeout time.Duration
}

// DefaultNotifyTimeout bounds notifications without their own timeout.
const DefaultNotifyTimeout = 30 * time.Second

// Cadence is how often a follow-up task (prune, check, drill) runs: never
// (the zero value), after every backup, or when the last run is at least
// Every old.
type Cadence struct {
	Always bool
	Every  time.Duration
}

// Enabled reports whether the task runs at all.
func (c Cadence) Enabled() bool { return c.Always || c.Every > 0 }

// Due reports whether the task is due now, given when it last ran
// successfully (zero = never).
func (c Cadence) Due(last, now time.Time) bool {
	switch {
	case c.Always:
		return true
	case c.Every <= 0:
		return false
	case last.IsZero():
		return true
	}
	return now.Sub(last) >= c.Every
}

func (c Cadence) String() string {
	switch {
	case c.Always:
		return "always"
	case c.Every <= 0:
		return "never"
	case c.Every%(7*24*time.Hour) == 0:
		return fmt.Sprintf("%dw", c.Every/(7*24*time.Hour))
	case c.Every%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", c.Every/(24*time.Hour))
	}
	return c.Every.String()
}

// ParseCadence parses "always", "never", "daily", "weekly", "monthly"
// (30 days) or a duration such as "12h", "7d", "2w".
func ParseCadence(s string) (Cadence, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return Cadence{Always: true}, nil
	case "never", "":
		return Cadence{}, nil
	case "daily":
		return Cadence{Every: 24 * time.Hour}, nil
	case "weekly":
		return Cadence{Every: 7 * 24 * time.Hour}, nil
	case "monthly":
		return Cadence{Every: 30 * 24 * time.Hour}, nil
	}
	d, err := history.ParseAge(s)
	if err != nil {
		return Cadence{}, fmt.Errorf("cadence %q is not always, never, daily, weekly, monthly or a duration (12h, 7d, 2w)", s)
	}
	return Cadence{Every: d}, nil
}

// Job returns the job with the given name.
func (c *Config) Job(name string) (*Job, bool) {
	for _, j := range c.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return nil, false
}

// Names lists the job names in file order.
func (c *Config) Names() []string {
	out := make([]string, len(c.Jobs))
	for i, j := range c.Jobs {
		out[i] = j.Name
	}
	return out
}

// Error is one problem in a config file, located by line, column and key.
type Error struct {
	File   string
	Line   int
	Column int
	Key    string // dotted path such as "jobs.nightly.retention.keep-daily"
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a config file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap exposes the single errors to errors.Is/As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxConfigSize bounds a config file.
const maxConfigSize = 1 << 20

// Load reads and parses a config file.
func Load(file string) (*Config, error) {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("read config %s: %w (the job's user must be able to read it)", file, err)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", file, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("read config %s: larger than %d bytes", file, maxConfigSize)
	}
	return Parse(data, file)
}

// Parse parses and validates a config file's content; file names it in
// errors. All problems are reported at once as [Errors].
func Parse(data []byte, file string) (*Config, error) {
	d := &decoder{file: file}
	cfg := &Config{File: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{d.yamlError(err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Errors{{File: file, Msg: "config file is empty"}}
	}
	root := doc.Content[0]
	d.config(root, cfg)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		return nil, d.errs
	}
	return cfg, nil
}

type decoder struct {
	file  string
	errs  Errors
	nodes int
}

// maxNodes bounds the nodes visited, so aliases cannot blow up the walk.
const maxNodes = 100000

func (d *decoder) yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: d.file, Msg: msg}
	// "line N: ..." is how yaml.v3 locates syntax errors.
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				e.Line, e.Column, e.Msg = v, 1, after
			}
		}
	}
	return e
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	e := &Error{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	d.nodes++
	return n
}

type field struct {
	name string
	fn   func(n *yaml.Node, key string)
}

// mapping walks a mapping node: every key must be known and appear once.
func (d *decoder) mapping(n *yaml.Node, key string, fields []field) {
	n = d.deref(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if d.nodes > maxNodes {
			d.fail(n, key, "too many nodes")
			return
		}
		k, v := d.deref(n.Content[i]), n.Content[i+1]
		name := k.Value
		sub := join(key, name)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, key, "keys must be plain strings")
			continue
		}
		if prev, dup := seen[name]; dup {
			d.fail(k, sub, "duplicate key (first defined on line %d)", prev.Line)
			continue
		}
		seen[name] = k
		var fn func(*yaml.Node, string)
		known := make([]string, 0, len(fields))
		for _, f := range fields {
			known = append(known, f.name)
			if f.name == name {
				fn = f.fn
			}
		}
		if fn == nil {
			d.fail(k, sub, "unknown key%s", suggest(name, known))
			continue
		}
		fn(v, sub)
	}
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// suggest names the closest known key (edit distance at most 2).
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := editDistance(name, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(known)
	return " (known: " + strings.Join(known, ", ") + ")"
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) str(n *yaml.Node, key string) (string, bool) {
	n = d.deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, key, "expected a string, got %s", kindName(n))
		return "", false
	}
	if n.Tag == "!!bool" {
		d.fail(n, key, "expected a string, got the boolean %s (quote it)", n.Value)
		return "", false
	}
	if strings.ContainsRune(n.Value, 0) {
		d.fail(n, key, "contains a NUL byte")
		return "", false
	}
	return n.Value, true
}

func (d *decoder) nonEmpty(n *yaml.Node, key string) (string, bool) {
	s, ok := d.str(n, key)
	if ok && strings.TrimSpace(s) == "" {
		d.fail(d.deref(n), key, "must not be empty")
		return "", false
	}
	return s, ok
}

func (d *decoder) boolean(n *yaml.Node, key string) (bool, bool) {
	n = d.deref(n)
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		d.fail(n, key, "expected true or false, got %s", kindName(n))
		return false, false
	}
	return v, true
}

// count parses a keep-* count: a non-negative integer or "unlimited".
func (d *decoder) count(n *yaml.Node, key string) (int, bool) {
	n = d.deref(n)
	if n.Kind == yaml.ScalarNode && n.Value == "unlimited" {
		return retention.Unlimited, true
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil || v < 0 || v > 1_000_000 {
		d.fail(n, key, "expected a count (0 or more, or unlimited), got %s", kindName(n))
		return 0, false
	}
	return v, true
}

func (d *decoder) duration(n *yaml.Node, key string) (time.Duration, bool) {
	s, ok := d.str(n, key)
	if !ok {
		return 0, false
	}
	v, err := history.ParseAge(s)
	if err != nil {
		d.fail(d.deref(n), key, "%v (use 30s, 15m, 2h, 7d)", err)
		return 0, false
	}
	return v, true
}

// strings parses a list of strings; a single string is a list of one.
func (d *decoder) strings(n *yaml.Node, key string) []string {
	n = d.deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		if s, ok := d.nonEmpty(n, key); ok {
			return []string{s}
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "expected a list of strings, got %s", kindName(n))
		return nil
	}
	var out []string
	for i, c := range n.Content {
		if s, ok := d.nonEmpty(c, fmt.Sprintf("%s[%d]", key, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) config(root *yaml.Node, cfg *Config) {
	var jobsNode *yaml.Node
	d.mapping(root, "", []field{
		{"repository", func(n *yaml.Node, k string) { cfg.Repository, _ = d.nonEmpty(n, k) }},
		{"password-file", func(n *yaml.Node, k string) { cfg.PasswordFile, _ = d.nonEmpty(n, k) }},
		{"password-command", func(n *yaml.Node, k string) { cfg.PasswordCommand, _ = d.nonEmpty(n, k) }},
		{"cache-dir", func(n *yaml.Node, k string) { cfg.CacheDir, _ = d.nonEmpty(n, k) }},
		{"jobs", func(n *yaml.Node, k string) { jobsNode = n; d.jobs(n, k, cfg) }},
	})
	if cfg.PasswordFile != "" && cfg.PasswordCommand != "" {
		d.fail(root, "password-command", "password-file and password-command are mutually exclusive")
	}
	if jobsNode == nil && d.deref(root).Kind == yaml.MappingNode {
		d.fail(root, "jobs", "no jobs defined")
	}
}

func (d *decoder) jobs(n *yaml.Node, key string, cfg *Config) {
	n = d.deref(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping of job names to jobs, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		d.fail(n, key, "no jobs defined")
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.deref(n.Content[i])
		name := k.Value
		sub := join(key, name)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, key, "job names must be plain strings")
			continue
		}
		if line, dup := seen[name]; dup {
			d.fail(k, sub, "two jobs named %q (the first on line %d)", name, line)
			continue
		}
		seen[name] = k.Line
		if err := schedule.ValidJobName(name); err != nil {
			d.fail(k, sub, "%v", err)
		}
		j := &Job{Name: name, Line: k.Line, Enabled: true}
		d.job(k, n.Content[i+1], sub, j)
		cfg.Jobs = append(cfg.Jobs, j)
	}
}

func (d *decoder) job(keyNode, n *yaml.Node, key string, j *Job) {
	n = d.deref(n)
	d.mapping(n, key, []field{
		{"paths", func(n *yaml.Node, k string) { j.Paths = d.paths(n, k) }},
		{"excludes", func(n *yaml.Node, k string) { j.Excludes = d.strings(n, k) }},
		{"disks", func(n *yaml.Node, k string) { j.Disks = d.disks(n, k) }},
		{"tags", func(n *yaml.Node, k string) { j.Tags = d.tags(n, k) }},
		{"schedule", func(n *yaml.Node, k string) {
			if s, ok := d.nonEmpty(n, k); ok {
				sc, err := schedule.Parse(s)
				if err != nil {
					d.fail(d.deref(n), k, "%v", err)
					return
				}
				j.Schedule = &sc
			}
		}},
		{"retention", func(n *yaml.Node, k string) { d.retention(n, k, &j.Retention) }},
		{"prune", func(n *yaml.Node, k string) { j.Prune = d.cadence(n, k) }},
		{"check", func(n *yaml.Node, k string) { j.Check = d.cadence(n, k) }},
		{"drill", func(n *yaml.Node, k string) { j.Drill = d.cadence(n, k) }},
		{"hooks", func(n *yaml.Node, k string) { d.hooks(n, k, &j.Hooks) }},
		{"notify", func(n *yaml.Node, k string) { d.notify(n, k, &j.Notify) }},
		{"enabled", func(n *yaml.Node, k string) { j.Enabled, _ = d.boolean(n, k) }},
		{"max-age", func(n *yaml.Node, k string) { j.MaxAge, _ = d.duration(n, k) }},
		{"compression", func(n *yaml.Node, k string) {
			if s, ok := d.nonEmpty(n, k); ok {
				if err := repo.ValidCompression(s); err != nil {
					d.fail(d.deref(n), k, "%v", err)
				} else {
					j.Compression = s
				}
			}
		}},
	})
	if n.Kind == yaml.MappingNode && len(j.Paths) == 0 && len(j.Disks) == 0 {
		d.fail(keyNode, key, "job has no sources: give paths or disks")
	}
}

func (d *decoder) paths(n *yaml.Node, key string) []string {
	ps := d.strings(n, key)
	for i, p := range ps {
		if !path.IsAbs(p) {
			d.fail(d.deref(n), fmt.Sprintf("%s[%d]", key, i), "path %q is not absolute (jobs run from /)", p)
		}
	}
	return ps
}

func (d *decoder) tags(n *yaml.Node, key string) []string {
	ts := d.strings(n, key)
	for i, t := range ts {
		if strings.ContainsAny(t, ", \t\n") {
			d.fail(d.deref(n), fmt.Sprintf("%s[%d]", key, i), "tag %q must not contain commas or spaces", t)
		}
	}
	return ts
}

// DiskFormats are the accepted disk format names ("" = detect).
var DiskFormats = []string{"raw", "device", "vmdk", "vhd", "vhdx", "qcow2"}

func (d *decoder) disks(n *yaml.Node, key string) []Disk {
	n = d.deref(n)
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "expected a list of disks, got %s", kindName(n))
		return nil
	}
	var out []Disk
	names := map[string]int{}
	for i, c := range n.Content {
		sub := fmt.Sprintf("%s[%d]", key, i)
		c = d.deref(c)
		var disk Disk
		if c.Kind == yaml.ScalarNode {
			disk.Path, _ = d.nonEmpty(c, sub)
		} else {
			d.mapping(c, sub, []field{
				{"path", func(n *yaml.Node, k string) { disk.Path, _ = d.nonEmpty(n, k) }},
				{"name", func(n *yaml.Node, k string) { disk.Name, _ = d.nonEmpty(n, k) }},
				{"format", func(n *yaml.Node, k string) {
					f, ok := d.nonEmpty(n, k)
					if !ok {
						return
					}
					f = strings.ToLower(f)
					if f != "auto" && !contains(DiskFormats, f) {
						d.fail(d.deref(n), k, "unknown disk format %q (use %s, or leave it out to detect)", f, strings.Join(DiskFormats, ", "))
						return
					}
					if f != "auto" {
						disk.Format = f
					}
				}},
			})
		}
		if disk.Path == "" {
			if c.Kind == yaml.MappingNode {
				d.fail(c, sub, "disk has no path")
			}
			continue
		}
		if !path.IsAbs(disk.Path) {
			d.fail(c, sub, "disk path %q is not absolute", disk.Path)
		}
		if disk.Name != "" && strings.ContainsAny(disk.Name, "/:\n") {
			d.fail(c, sub+".name", "disk name %q must not contain '/' or ':'", disk.Name)
		}
		name := disk.Name
		if name == "" {
			name = path.Base(disk.Path)
		}
		if line, dup := names[name]; dup {
			d.fail(c, sub, "two disks named %q (the first on line %d); set name:", name, line)
		}
		names[name] = c.Line
		out = append(out, disk)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (d *decoder) cadence(n *yaml.Node, key string) Cadence {
	dn := d.deref(n)
	if dn.Kind == yaml.ScalarNode && dn.Tag == "!!bool" {
		if dn.Value == "true" {
			return Cadence{Always: true}
		}
		return Cadence{}
	}
	s, ok := d.str(n, key)
	if !ok {
		return Cadence{}
	}
	c, err := ParseCadence(s)
	if err != nil {
		d.fail(dn, key, "%v", err)
	}
	return c
}

func (d *decoder) retention(n *yaml.Node, key string, p *retention.Policy) {
	n = d.deref(n)
	dur := func(n *yaml.Node, k string, dst *retention.Duration) {
		s, ok := d.nonEmpty(n, k)
		if !ok {
			return
		}
		v, err := retention.ParseDuration(s)
		if err != nil {
			d.fail(d.deref(n), k, "%v", err)
			return
		}
		*dst = v
	}
	n0 := len(d.errs)
	cnt := func(dst *int) func(*yaml.Node, string) {
		return func(n *yaml.Node, k string) { *dst, _ = d.count(n, k) }
	}
	d.mapping(n, key, []field{
		{"keep-last", cnt(&p.Last)},
		{"keep-hourly", cnt(&p.Hourly)},
		{"keep-daily", cnt(&p.Daily)},
		{"keep-weekly", cnt(&p.Weekly)},
		{"keep-monthly", cnt(&p.Monthly)},
		{"keep-yearly", cnt(&p.Yearly)},
		{"keep-within", func(n *yaml.Node, k string) { dur(n, k, &p.Within) }},
		{"keep-within-hourly", func(n *yaml.Node, k string) { dur(n, k, &p.WithinHourly) }},
		{"keep-within-daily", func(n *yaml.Node, k string) { dur(n, k, &p.WithinDaily) }},
		{"keep-within-weekly", func(n *yaml.Node, k string) { dur(n, k, &p.WithinWeekly) }},
		{"keep-within-monthly", func(n *yaml.Node, k string) { dur(n, k, &p.WithinMonthly) }},
		{"keep-within-yearly", func(n *yaml.Node, k string) { dur(n, k, &p.WithinYearly) }},
		{"keep-within-every", func(n *yaml.Node, k string) {
			for _, s := range d.strings(n, k) {
				e, err := retention.ParseEvery(s)
				if err != nil {
					d.fail(d.deref(n), k, "%v", err)
					continue
				}
				p.Every = append(p.Every, e)
			}
		}},
		{"keep-tag", func(n *yaml.Node, k string) {
			for _, s := range d.strings(n, k) {
				l, err := retention.ParseTagList(s)
				if err != nil {
					d.fail(d.deref(n), k, "%v", err)
					continue
				}
				p.Tags = append(p.Tags, l)
			}
		}},
		{"remove-older-than", func(n *yaml.Node, k string) { dur(n, k, &p.MaxAge) }},
	})
	if n.Kind == yaml.MappingNode && len(d.errs) == n0 {
		if err := p.Validate(); err != nil {
			d.fail(n, key, "%v", err)
		}
	}
}

func (d *decoder) hooks(n *yaml.Node, key string, h *Hooks) {
	list := func(dst *[]Hook) func(*yaml.Node, string) {
		return func(n *yaml.Node, k string) { *dst = d.hookList(n, k) }
	}
	d.mapping(n, key, []field{
		{"before", list(&h.Before)},
		{"after", list(&h.After)},
		{"on-success", list(&h.OnSuccess)},
		{"on-failure", list(&h.OnFailure)},
	})
}

func (d *decoder) hookList(n *yaml.Node, key string) []Hook {
	n = d.deref(n)
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "expected a list of hooks, got %s", kindName(n))
		return nil
	}
	var out []Hook
	for i, c := range n.Content {
		sub := fmt.Sprintf("%s[%d]", key, i)
		c = d.deref(c)
		h := Hook{Timeout: DefaultHookTimeout, Line: c.Line}
		if c.Kind == yaml.ScalarNode {
			h.Command, _ = d.nonEmpty(c, sub)
		} else if c.Kind == yaml.MappingNode && len(c.Content) == 2 && c.Content[0].Value != "command" && c.Content[0].Value != "timeout" {
			d.fail(c, sub, "%q looks like a command containing \": \"; quote the whole command", c.Content[0].Value+": "+c.Content[1].Value)
		} else {
			d.mapping(c, sub, []field{
				{"command", func(n *yaml.Node, k string) { h.Command, _ = d.nonEmpty(n, k) }},
				{"timeout", func(n *yaml.Node, k string) {
					if v, ok := d.duration(n, k); ok {
						h.Timeout = v
					}
				}},
			})
			if h.Command == "" && c.Kind == yaml.MappingNode {
				d.fail(c, sub, "hook has no command")
			}
		}
		if h.Command != "" {
			out = append(out, h)
		}
	}
	return out
}

func (d *decoder) notify(n *yaml.Node, key string, nt *Notify) {
	d.mapping(n, key, []field{
		{"command", func(n *yaml.Node, k string) { nt.Command, _ = d.nonEmpty(n, k) }},
		{"url", func(n *yaml.Node, k string) {
			s, ok := d.nonEmpty(n, k)
			if !ok {
				return
			}
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.fail(d.deref(n), k, "%q is not an http:// or https:// URL", s)
				return
			}
			nt.URL = strings.TrimRight(s, "/")
		}},
		{"timeout", func(n *yaml.Node, k string) { nt.Timeout, _ = d.duration(n, k) }},
	})
}

// Validate checks a config (for example one built in code) without
// touching anything: job names, sources, retention and hook commands.
func (c *Config) Validate() error {
	var errs Errors
	add := func(j *Job, key, format string, args ...any) {
		e := &Error{File: c.File, Key: key, Msg: fmt.Sprintf(format, args...)}
		if j != nil {
			e.Line, e.Column = j.Line, 1
		}
		errs = append(errs, e)
	}
	if c.PasswordFile != "" && c.PasswordCommand != "" {
		add(nil, "password-command", "password-file and password-command are mutually exclusive")
	}
	if len(c.Jobs) == 0 {
		add(nil, "jobs", "no jobs defined")
	}
	seen := map[string]bool{}
	for _, j := range c.Jobs {
		key := "jobs." + j.Name
		if err := schedule.ValidJobName(j.Name); err != nil {
			add(j, key, "%v", err)
		}
		if seen[j.Name] {
			add(j, key, "two jobs named %q", j.Name)
		}
		seen[j.Name] = true
		if len(j.Paths) == 0 && len(j.Disks) == 0 {
			add(j, key, "job has no sources: give paths or disks")
		}
		for _, p := range j.Paths {
			if !path.IsAbs(p) {
				add(j, key+".paths", "path %q is not absolute", p)
			}
		}
		for _, dk := range j.Disks {
			if !path.IsAbs(dk.Path) {
				add(j, key+".disks", "disk path %q is not absolute", dk.Path)
			}
			if dk.Format != "" && !contains(DiskFormats, dk.Format) {
				add(j, key+".disks", "unknown disk format %q", dk.Format)
			}
		}
		if !j.Retention.Empty() {
			if err := j.Retention.Validate(); err != nil {
				add(j, key+".retention", "%v", err)
			}
		}
		for _, hs := range [][]Hook{j.Hooks.Before, j.Hooks.After, j.Hooks.OnSuccess, j.Hooks.OnFailure} {
			for _, h := range hs {
				if strings.TrimSpace(h.Command) == "" || h.Timeout <= 0 {
					add(j, key+".hooks", "hook needs a command and a positive timeout")
				}
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Specs returns the schedule specs of the enabled, scheduled jobs, for
// rendering timers or cron lines.
func (c *Config) Specs() []schedule.JobSpec {
	var out []schedule.JobSpec
	for _, j := range c.Jobs {
		if j.Enabled && j.Schedule != nil {
			out = append(out, schedule.JobSpec{Name: j.Name, Schedule: *j.Schedule})
		}
	}
	return out
}
