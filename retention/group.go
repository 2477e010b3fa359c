package retention

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bunkerbackup/bunker/repo"
)

// GroupBy selects what separates snapshots into groups that retention
// treats independently.
type GroupBy struct {
	Host  bool
	Paths bool // the backed-up paths; for disks the disk names; the job name when set
	Tags  bool
}

// DefaultGroupBy is restic's default: host and paths.
var DefaultGroupBy = GroupBy{Host: true, Paths: true}

// ParseGroupBy parses a comma-separated list of host, paths and tags
// (singular forms accepted). The empty string puts all snapshots in one group.
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	if strings.TrimSpace(s) == "" {
		return g, nil
	}
	for f := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(f) {
		case "host", "hostname":
			g.Host = true
		case "paths", "path":
			g.Paths = true
		case "tags", "tag":
			g.Tags = true
		default:
			return GroupBy{}, fmt.Errorf("parse group-by %q: unknown field %q (use host, paths, tags)", s, f)
		}
	}
	return g, nil
}

func (g GroupBy) String() string {
	var f []string
	if g.Host {
		f = append(f, "host")
	}
	if g.Paths {
		f = append(f, "paths")
	}
	if g.Tags {
		f = append(f, "tags")
	}
	return strings.Join(f, ",")
}

// GroupKey identifies a group. Fields not grouped by are empty.
type GroupKey struct {
	Hostname string   `json:"hostname,omitempty"`
	Job      string   `json:"job,omitempty"`
	Paths    []string `json:"paths,omitempty"` // sorted; disks as "disk:NAME"
	Tags     []string `json:"tags,omitempty"`  // sorted
	// untagged: grouped by tags, and the group's snapshots have none.
	untagged bool
}

// Key returns the group key of sn under g. With Paths, a snapshot written by
// a job is grouped by its job name (a job's sources may change over time),
// and a disk is identified by its name in the snapshot rather than its
// source path (device names change between boots).
func (g GroupBy) Key(sn *repo.Snapshot) GroupKey {
	var k GroupKey
	if g.Host {
		k.Hostname = sn.Hostname
	}
	if g.Paths {
		if sn.Job != "" {
			k.Job = sn.Job
		} else {
			k.Paths = snapshotPaths(sn)
		}
	}
	if g.Tags {
		k.Tags = slices.Clone(sn.Tags)
		sort.Strings(k.Tags)
		k.Tags = slices.Compact(k.Tags)
		k.untagged = len(k.Tags) == 0
	}
	return k
}

func snapshotPaths(sn *repo.Snapshot) []string {
	diskSrc := map[string]bool{}
	var p []string
	for _, d := range sn.Disks {
		diskSrc[d.Source] = true
		p = append(p, "disk:"+d.Name)
	}
	for _, s := range sn.Paths {
		if !diskSrc[s] {
			p = append(p, s)
		}
	}
	sort.Strings(p)
	return slices.Compact(p)
}

func (k GroupKey) id() string {
	return k.Hostname + "\x00" + k.Job + "\x00" + strings.Join(k.Paths, "\x01") + "\x00" + strings.Join(k.Tags, "\x01")
}

// String describes the key: "host web1, paths [/etc /home], tags [daily]".
func (k GroupKey) String() string {
	var f []string
	if k.Hostname != "" {
		f = append(f, "host "+k.Hostname)
	}
	if k.Job != "" {
		f = append(f, "job "+k.Job)
	}
	if len(k.Paths) > 0 {
		f = append(f, "paths ["+strings.Join(k.Paths, " ")+"]")
	}
	if len(k.Tags) > 0 {
		f = append(f, "tags ["+strings.Join(k.Tags, " ")+"]")
	}
	if k.untagged {
		f = append(f, "no tags")
	}
	if len(f) == 0 {
		return "all snapshots"
	}
	return strings.Join(f, ", ")
}
