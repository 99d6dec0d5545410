// Package browsertest loads the profiler's flame graph page in headless
// Chromium and works its controls, as a user would.
//
// It is a module of its own so that the library's go.mod never requires
// chromedp and the library's `go test ./...` needs no browser. Here a
// missing browser is a failure, not a skip: `make test` installs Debian's
// chromium (the browser-deps target) before it runs this module's tests:
//
//	cd browsertest && GOWORK=off go test -race -count=1 ./...
package browsertest
