package vmdk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// noParent is the parentCID of a disk without a parent.
const noParent = 0xFFFFFFFF

// maxExtents bounds the extent lines of a descriptor (a 64 TiB disk split
// into 2 GiB extents has 32768).
const maxExtents = 1 << 16

// descriptor is a parsed VMDK text descriptor.
type descriptor struct {
	Version    int
	CID        uint32
	HasCID     bool
	ParentCID  uint32
	CreateType string
	ParentHint string // parentFileNameHint
	Extents    []extentLine
	DDB        map[string]string
}

// extentLine is one "ACCESS SECTORS TYPE "FILE" [OFFSET]" line.
type extentLine struct {
	Access  string // RW, RDONLY, NOACCESS
	Sectors int64
	Type    string // SPARSE, FLAT, ZERO, VMFS, ...
	File    string // relative to the descriptor; empty for ZERO
	Offset  int64  // sectors into File (FLAT, VMFS)
	Line    int
}

// parseDescriptor parses descriptor text (a separate file, or the NUL
// padded area embedded in a sparse extent). Lines may end in CRLF; file
// names are quoted and may contain spaces. Errors name the line.
func parseDescriptor(text []byte) (*descriptor, error) {
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
	d := &descriptor{ParentCID: noParent, DDB: map[string]string{}}
	seen := map[string]bool{}
	for n, raw := range bytes.Split(text, []byte("\n")) {
		lineNo := n + 1
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		first, _, _ := strings.Cut(line, " ")
		switch first {
		case "RW", "RDONLY", "NOACCESS":
			if len(d.Extents) >= maxExtents {
				return nil, fmt.Errorf("line %d: more than %d extents", lineNo, maxExtents)
			}
			e, err := parseExtentLine(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", lineNo, err)
			}
			e.Line = lineNo
			d.Extents = append(d.Extents, e)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: neither an extent nor key=value: %q", lineNo, clip(line))
		}
		key = strings.TrimSpace(key)
		value = unquote(strings.TrimSpace(value))
		if key == "" {
			return nil, fmt.Errorf("line %d: empty key", lineNo)
		}
		if strings.HasPrefix(key, "ddb.") {
			d.DDB[key] = value
			continue
		}
		if seen[key] {
			return nil, fmt.Errorf("line %d: duplicate key %q", lineNo, clip(key))
		}
		seen[key] = true
		switch key {
		case "version":
			v, err := strconv.Atoi(value)
			if err != nil || v < 1 || v > 3 {
				return nil, fmt.Errorf("line %d: bad version %q", lineNo, clip(value))
			}
			d.Version = v
		case "CID":
			v, err := parseCID(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad CID %q", lineNo, clip(value))
			}
			d.CID, d.HasCID = v, true
		case "parentCID":
			v, err := parseCID(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad parentCID %q", lineNo, clip(value))
			}
			d.ParentCID = v
		case "createType":
			d.CreateType = value
		case "parentFileNameHint":
			d.ParentHint = value
		}
	}
	if d.CreateType == "" {
		return nil, fmt.Errorf("no createType")
	}
	return d, nil
}

func parseCID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	return uint32(v), err
}

// parseExtentLine parses `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
func parseExtentLine(line string) (extentLine, error) {
	var e extentLine
	rest := line
	next := func() string {
		rest = strings.TrimLeft(rest, " \t")
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			tok := rest
			rest = ""
			return tok
		}
		tok := rest[:i]
		rest = rest[i:]
		return tok
	}
	e.Access = next()
	sectors := next()
	n, err := strconv.ParseInt(sectors, 10, 64)
	if err != nil || n < 0 || n > maxCapacity {
		return e, fmt.Errorf("bad extent size %q", clip(sectors))
	}
	e.Sectors = n
	e.Type = next()
	if e.Type == "" {
		return e, fmt.Errorf("extent without a type")
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" {
		if e.Type != "ZERO" {
			return e, fmt.Errorf("%s extent without a file name", e.Type)
		}
		return e, nil
	}
	if rest[0] == '"' {
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return e, fmt.Errorf("unterminated file name")
		}
		e.File = rest[1 : 1+end]
		rest = rest[2+end:]
	} else {
		e.File = next()
	}
	if e.File == "" {
		return e, fmt.Errorf("empty file name")
	}
	if off := strings.TrimSpace(rest); off != "" {
		v, err := strconv.ParseInt(off, 10, 64)
		if err != nil || v < 0 || v > maxCapacity {
			return e, fmt.Errorf("bad extent offset %q", clip(off))
		}
		e.Offset = v
	}
	return e, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// clip shortens untrusted text quoted in error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// marshalDescriptor writes a descriptor for a single-extent disk.
func marshalDescriptor(cid uint32, createType string, sectors uint64, extentType, file string) string {
	cyl := min(sectors/(16*63), 16383)
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\ncreateType=%q\n\n", cid, createType)
	fmt.Fprintf(&b, "# Extent description\nRW %d %s \"%s\"\n\n", sectors, extentType, file)
	fmt.Fprintf(&b, "# The Disk Data Base\n#DDB\n\n")
	fmt.Fprintf(&b, "ddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"16\"\n", cyl)
	fmt.Fprintf(&b, "ddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\nddb.toolsVersion = \"0\"\n")
	return b.String()
}
