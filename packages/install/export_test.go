package install

// AfterChange makes r call f after every change of its files (a group
// that must appear together), outside the barrier, on the goroutine that
// made it: a test can take a snapshot at every boundary between groups.
func AfterChange(r *Registry, f func()) { r.afterChange = f }
