package profiler

// Fixtures of the internal tests, for the tests of package profiler_test.
var (
	SynthProfile = synthProfile
	SynthNodes   = synthNodes
	SynthMatch   = synthMatch
	SynthZoom    = synthZoom
)

// EvilName is a function name of SynthProfile that would run script if it
// reached a page as markup.
const EvilName = evilName
