package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/bunkerbackup/bunker/repo"
)

// TestMain runs the testscript driver; the test binary doubles as the
// bunker command inside the scripts (testscript.Main). The cheap KDF is set
// here so it applies to those bunker processes too.
func TestMain(m *testing.M) {
	repo.TestUseLowSecurityKDFParameters()
	// Commands run in-process by the Go tests record their history here,
	// never in the machine's (/var/lib/bunker for root). The directory is
	// left to the system's temporary-file cleaning: testscript.Main exits.
	// Scripts set their own, which the bunker they run (this binary) keeps.
	if os.Getenv("XDG_STATE_HOME") == "" {
		if state, err := os.MkdirTemp("", "bunker-test-state-"); err == nil {
			os.Setenv("XDG_STATE_HOME", state)
		}
	}
	testscript.Main(m, map[string]func(){"bunker": main, "bunker-lockholder": lockHolder, "asnobody": asNobody})
}

// TestScripts runs every testscripts/*.txtar. Set BUNKER_UPDATE_SCRIPTS=1 to
// rewrite the golden `cmp stdout` sections from the actual output.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "../../testscripts",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("BUNKER_UPDATE_SCRIPTS") != "",
		Setup:               scriptSetup,
		Cmds:                scriptCmds,
		Condition:           scriptCondition,
	})
}
