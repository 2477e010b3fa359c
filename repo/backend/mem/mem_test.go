package mem_test

import (
	"testing"

	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/backendtest"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return mem.New() })
}
