package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time: -ldflags "-X main.version=1.2.3 -X main.commit=abc -X main.date=...".
var (
	version = ""
	commit  = ""
	date    = ""
)

// programVersion returns the linked version, else the module version from
// the build info (set by `go install module@vX`), else "(devel)".
func programVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

type versionInfo struct {
	MessageType string `json:"message_type"`
	Version     string `json:"version"`
	Commit      string `json:"commit,omitempty"`
	Date        string `json:"date,omitempty"`
	GoVersion   string `json:"go_version"`
	GoOS        string `json:"go_os"`
	GoArch      string `json:"go_arch"`
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version information",
		Long:  "Print the version of bunker, the Go version it was built with and the platform." + exitStatusHelp(),
		Example: `  bunker version
  bunker version --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionInfo{
				MessageType: "version",
				Version:     programVersion(),
				Commit:      commit,
				Date:        date,
				GoVersion:   runtime.Version(),
				GoOS:        runtime.GOOS,
				GoArch:      runtime.GOARCH,
			}
			if g.JSON {
				return json.NewEncoder(g.stdout).Encode(v)
			}
			_, err := fmt.Fprintf(g.stdout, "bunker %s compiled with %s on %s/%s\n", v.Version, v.GoVersion, v.GoOS, v.GoArch)
			return err
		},
	}
}
