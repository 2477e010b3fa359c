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
