package engine

// Version is the release of agentloop this engine is built from, in the
// form of the module's tags (semantic versioning; see CHANGELOG.md).
const Version = "0.6.0"
