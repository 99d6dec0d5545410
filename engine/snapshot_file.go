package engine

// This file: snapshots in files: atomic writes, and periodic snapshots
// in a directory.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SnapshotFile writes a snapshot (see Snapshot) to path, atomically: into
// a temporary file of the same directory (named "."+base(path)+".tmp-…",
// mode 0600), synced, then renamed over path, and the directory synced.
// A crash or an error at any point leaves what path held before intact
// (the temporary file may be left behind; nothing here reads it as a
// snapshot). On error the temporary file is removed.
func (e *Engine) SnapshotFile(ctx context.Context, path string, opts ...SnapshotOption) (SnapshotInfo, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("engine: snapshot file: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return SnapshotInfo{}, fmt.Errorf("engine: snapshot file: %w", err)
	}
	info, err := e.Snapshot(ctx, fileWriter{f}, opts...)
	if err != nil {
		return SnapshotInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return SnapshotInfo{}, fmt.Errorf("engine: snapshot file: %w", err)
	}
	if err := f.Close(); err != nil {
		return SnapshotInfo{}, fmt.Errorf("engine: snapshot file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return SnapshotInfo{}, fmt.Errorf("engine: snapshot file: %w", err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return info, fmt.Errorf("engine: snapshot file: sync %s: %w", dir, err)
		}
	}
	return info, nil
}

// fileWriter is the temporary file of SnapshotFile; after each write it
// calls snapshotWriteHook, when set (tests: to be killed in the middle of
// the bytes).
type fileWriter struct{ f *os.File }

var snapshotWriteHook func(written int64)

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if h := snapshotWriteHook; h != nil {
		if off, serr := w.f.Seek(0, io.SeekCurrent); serr == nil {
			h(off)
		}
	}
	return n, err
}

// RestoreFile is Restore from the file at path.
func (e *Engine) RestoreFile(ctx context.Context, path string, opts ...RestoreOption) (RestoreInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return RestoreInfo{}, fmt.Errorf("engine: restore: %w", err)
	}
	defer f.Close()
	info, err := e.Restore(ctx, f, opts...)
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// Periodic snapshot files are named snapshot-<sequence>-<UTC time>.snap,
// the sequence 12 decimal digits, so that names sort in sequence order.
const (
	snapFilePrefix = "snapshot-"
	snapFileSuffix = ".snap"
	snapSeqDigits  = 12
)

// SnapshotFiles lists the periodic snapshot files of dir (those
// SnapshotEvery names), newest first. Temporary files are never listed. A
// missing directory has none.
func SnapshotFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("engine: snapshot files: %w", err)
	}
	type named struct {
		seq  uint64
		path string
	}
	var fs []named
	for _, de := range ents {
		if seq, ok := snapshotSeq(de.Name()); ok && de.Type().IsRegular() {
			fs = append(fs, named{seq, filepath.Join(dir, de.Name())})
		}
	}
	slices.SortFunc(fs, func(a, b named) int {
		switch {
		case a.seq > b.seq:
			return -1
		case a.seq < b.seq:
			return 1
		}
		return strings.Compare(b.path, a.path)
	})
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.path
	}
	return out, nil
}

func snapshotSeq(name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, snapFilePrefix)
	if !ok || !strings.HasSuffix(rest, snapFileSuffix) || len(rest) < snapSeqDigits+1 || rest[snapSeqDigits] != '-' {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest[:snapSeqDigits], 10, 64)
	return seq, err == nil
}

// PeriodicConfig configures SnapshotEvery.
type PeriodicConfig struct {
	Dir   string        // where the files go; created (0700) if missing
	Every time.Duration // between the end of one snapshot and the next, on the engine's clock
	Keep  int           // files kept: after each snapshot the oldest beyond Keep are removed
	// Options are the options of each snapshot (WithQueued).
	Options []SnapshotOption
	// OnSnapshot, when set, is called after each attempt, with the file
	// written or the error, on the goroutine of the periodic snapshots.
	// By then the next snapshot is scheduled and old files are pruned.
	OnSnapshot func(path string, info SnapshotInfo, err error)
}

// PeriodicStats are the counters of periodic snapshots.
type PeriodicStats struct {
	Written, Failed uint64
	Last            string // the last file written
	LastErr         error  // the last failure, nil if none
}

// Periodic is the handle of periodic snapshots (SnapshotEvery).
type Periodic struct {
	e    *Engine
	cfg  PeriodicConfig
	seq  uint64
	tick chan struct{}
	quit chan struct{}
	done chan struct{}
	stop func() bool // the pending alarm's (the periodic goroutine only)

	once1  sync.Once  // closes quit
	takeMu sync.Mutex // one file at a time; guards seq
	mu     sync.Mutex
	stats  PeriodicStats
}

// SnapshotEvery writes a snapshot file into cfg.Dir every cfg.Every of the
// engine's clock (a manual clock, WithClock, drives it in tests), as
// SnapshotFile does, and keeps the cfg.Keep newest. The sequence goes on
// from the highest already in the directory. A failure is counted
// (Periodic.Stats), logged at level Error through the engine's logger
// (WithLogger) and passed to cfg.OnSnapshot; the next snapshot is
// scheduled all the same. The snapshots end with Periodic.Stop or when the
// engine stops. It returns an error wrapping ErrInvalidArgument for an
// Every or Keep below 1 or an empty Dir.
func (e *Engine) SnapshotEvery(cfg PeriodicConfig) (*Periodic, error) {
	if cfg.Every <= 0 || cfg.Keep < 1 || cfg.Dir == "" {
		return nil, fmt.Errorf("%w: SnapshotEvery: every %v, keep %d, dir %q", ErrInvalidArgument, cfg.Every, cfg.Keep, cfg.Dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("engine: SnapshotEvery: %w", err)
	}
	files, err := SnapshotFiles(cfg.Dir)
	if err != nil {
		return nil, err
	}
	p := &Periodic{e: e, cfg: cfg, tick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if len(files) > 0 {
		p.seq, _ = snapshotSeq(filepath.Base(files[0]))
	}
	p.arm()
	go p.run()
	return p, nil
}

func (p *Periodic) arm() {
	p.stop = p.e.clock.AfterFunc(p.cfg.Every, func() {
		select {
		case p.tick <- struct{}{}:
		default:
		}
	})
}

func (p *Periodic) run() {
	defer close(p.done)
	defer func() { p.stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.quit:
		case <-p.e.stopCh:
		case <-ctx.Done():
		}
		cancel()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.tick:
		}
		path, info, err := p.take(ctx)
		if ctx.Err() != nil {
			return // stopping: a snapshot cut short is no failure
		}
		p.arm()
		if p.cfg.OnSnapshot != nil {
			p.cfg.OnSnapshot(path, info, err)
		}
	}
}

// SnapshotNow writes the next file of the sequence at once, as the
// periodic snapshots do (counted, logged and pruned alike, but not passed
// to OnSnapshot), and returns it. The schedule is left as it is.
func (p *Periodic) SnapshotNow(ctx context.Context) (string, SnapshotInfo, error) {
	return p.take(ctx)
}

// take writes the next file, prunes the old ones and counts the outcome.
func (p *Periodic) take(ctx context.Context) (string, SnapshotInfo, error) {
	p.takeMu.Lock()
	defer p.takeMu.Unlock()
	path, info, err := p.once(ctx)
	if ctx.Err() != nil {
		return path, info, err
	}
	p.mu.Lock()
	if err != nil {
		p.stats.Failed++
		p.stats.LastErr = err
	} else {
		p.stats.Written++
		p.stats.Last = path
	}
	p.mu.Unlock()
	if err != nil {
		p.e.write(slog.LevelError, "engine: periodic snapshot failed", slog.String("dir", p.cfg.Dir), slog.Any("cause", err))
	}
	return path, info, err
}

// once writes the next file and prunes the old ones. Under takeMu.
func (p *Periodic) once(ctx context.Context) (string, SnapshotInfo, error) {
	p.seq++
	now := time.Unix(0, p.e.now()).UTC()
	name := fmt.Sprintf("%s%0*d-%s%s", snapFilePrefix, snapSeqDigits, p.seq, now.Format("20060102T150405.000000000Z"), snapFileSuffix)
	path := filepath.Join(p.cfg.Dir, name)
	info, err := p.e.SnapshotFile(ctx, path, p.cfg.Options...)
	if err != nil {
		return "", SnapshotInfo{}, err
	}
	files, err := SnapshotFiles(p.cfg.Dir)
	if err != nil {
		return path, info, err
	}
	for _, old := range files[min(p.cfg.Keep, len(files)):] {
		if err := os.Remove(old); err != nil && !errors.Is(err, os.ErrNotExist) {
			return path, info, fmt.Errorf("engine: prune snapshot: %w", err)
		}
	}
	return path, info, nil
}

// Stats returns the counters so far.
func (p *Periodic) Stats() PeriodicStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Stop ends the periodic snapshots and waits for a snapshot in progress
// to give up. Safe to call more than once.
func (p *Periodic) Stop() {
	p.once1.Do(func() { close(p.quit) })
	<-p.done
}
