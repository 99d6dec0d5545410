package dashboard

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

// The page, its script and its style, embedded: the dashboard fetches
// nothing from the network, and its Content-Security-Policy lets the page
// load nothing but them and the streams.
//
//go:embed page/index.html page/dashboard.js page/dashboard.css
var assets embed.FS

// csp allows the page its own script, style and streams, and nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var pageTmpl = template.Must(template.ParseFS(assets, "page/index.html"))

// renderPage renders index.html for opts, once.
func renderPage(opts Options) ([]byte, error) {
	var b bytes.Buffer
	err := pageTmpl.Execute(&b, struct {
		Points     int64
		IntervalMS int64
		FlameURL   string
	}{int64(opts.History / opts.Interval), opts.Interval.Milliseconds(), opts.FlameURL})
	return b.Bytes(), err
}

func setStaticHeaders(w http.ResponseWriter, ctype string) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
}

func (d *Dashboard) servePage(w http.ResponseWriter, r *http.Request) {
	setStaticHeaders(w, "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(d.page)
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	b, err := assets.ReadFile("page/" + name)
	if err != nil { // unreachable: the names are the embedded files
		http.NotFound(w, r)
		return
	}
	ctype := "text/css; charset=utf-8"
	if name == "dashboard.js" {
		ctype = "text/javascript; charset=utf-8"
	}
	setStaticHeaders(w, ctype)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
