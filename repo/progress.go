package repo

// Progress receives the progress of a repository-wide operation that runs
// in phases (check, prune, repair): Phase starts a phase with its total
// number of items, Done reports n more items of it finished. Done may be
// called from several goroutines at once.
type Progress interface {
	Phase(name string, total int)
	Done(n int)
}

// NoProgress is a Progress that reports nothing.
type NoProgress struct{}

// Phase implements [Progress].
func (NoProgress) Phase(string, int) {}

// Done implements [Progress].
func (NoProgress) Done(int) {}
