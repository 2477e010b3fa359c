package main

import "github.com/bunkerbackup/bunker/drill"

// drillProgress adapts progress to drill.Progress: each phase of each item
// restarts the counters.
type drillProgress struct{ *progress }

func (p drillProgress) Phase(item, phase string) {
	name := item + " " + phase
	p.phase.Store(&name)
	p.totalFiles.Store(0)
	p.totalBytes.Store(0)
	p.filesDone.Store(0)
	p.bytesDone.Store(0)
	if p.bar != nil {
		p.bar.Describe(name)
	}
}

type drillItemJSON struct {
	Name           string   `json:"name"`
	Format         string   `json:"format,omitempty"`
	Container      bool     `json:"container,omitempty"`
	Path           string   `json:"path"`
	Size           int64    `json:"size"`
	Bytes          int64    `json:"bytes"`
	Files          uint64   `json:"files"`
	Verified       uint64   `json:"verified"`
	Digest         string   `json:"digest,omitempty"`
	RestoreSeconds float64  `json:"restore_seconds"`
	VerifySeconds  float64  `json:"verify_seconds"`
	OK             bool     `json:"ok"`
	Failures       []string `json:"failures,omitempty"`
}

// drillJSON is the summary line of a drill.
func drillJSON(rep *drill.Report) map[string]any {
	items := []drillItemJSON{}
	for _, it := range rep.Items {
		items = append(items, drillItemJSON{
			Name: it.Name, Format: it.Format, Container: it.Container, Path: it.Path, Size: it.Size, Bytes: it.Bytes,
			Files: it.Files, Verified: it.Verified, Digest: it.Digest,
			RestoreSeconds: it.Restore.Seconds(), VerifySeconds: it.Verify.Seconds(),
			OK: it.OK(), Failures: it.Failures,
		})
	}
	return map[string]any{
		"message_type":    "summary",
		"snapshot_id":     rep.Snapshot.String(),
		"ok":              rep.OK(),
		"scratch":         rep.Dir,
		"kept":            rep.Kept,
		"items":           items,
		"disks":           rep.Disks,
		"files":           rep.Files,
		"bytes":           rep.Bytes,
		"restore_seconds": rep.Restore.Seconds(),
		"verify_seconds":  rep.Verify.Seconds(),
		"total_seconds":   rep.Total.Seconds(),
		"space_needed":    rep.SpaceNeeded,
		"space_free":      rep.SpaceFree,
	}
}
