package engine

// SetSnapshotWriteHook sets the function SnapshotFile calls after each
// write to its temporary file, with the bytes written so far (nil: none).
func SetSnapshotWriteHook(f func(written int64)) { snapshotWriteHook = f }
