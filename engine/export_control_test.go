package engine

// SetControlLookupHook sets the function Pause, Resume and Terminate by ID
// call right after their registry lookup (nil: none).
func SetControlLookupHook(f func()) { controlLookupHook = f }
