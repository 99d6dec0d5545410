// Command clusterdemo runs the gateway's device agents on three nodes, as
// three processes on one embedded NATS server on localhost, kills one
// with SIGKILL halfway, and prints the re-home time and the cluster-wide
// accounting of the sends: accepted = delivered + dead-lettered.
//
//	go run ./cmd/clusterdemo [-devices 3000] [-duration 6s] [-rate 20000]
//
// The parent process starts the server and re-executes itself once per
// node (the node's settings in the environment); each node produces
// telemetry for its third of the devices, wherever their agents live, and
// prints its live figures. The exit status is 1 when the accounting does
// not add up.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// envNode names the node a re-executed process runs; envArgs carries the
// parent's settings to it.
const (
	envNode = "CLUSTERDEMO_NODE"
	envArgs = "CLUSTERDEMO_ARGS"
	envURL  = "CLUSTERDEMO_URL"
)

var names = []string{"gw-1", "gw-2", "gw-3"}

const victim = "gw-3"

type settings struct {
	devices   int
	duration  time.Duration
	rate      int
	heartbeat time.Duration
	lostAfter time.Duration
}

func parse(args []string, errOut io.Writer) (settings, error) {
	fs := flag.NewFlagSet("clusterdemo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var s settings
	fs.IntVar(&s.devices, "devices", 3000, "device agents, split among the nodes")
	fs.DurationVar(&s.duration, "duration", 6*time.Second, "how long the nodes produce telemetry; "+victim+" is killed halfway")
	fs.IntVar(&s.rate, "rate", 20000, "telemetry messages per second, per node")
	fs.DurationVar(&s.heartbeat, "heartbeat", 100*time.Millisecond, "the nodes' heartbeat interval")
	fs.DurationVar(&s.lostAfter, "lost-after", time.Second, "silence after which a node is declared lost")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	switch {
	case s.devices < 3 || s.devices > 1_000_000:
		return s, fmt.Errorf("-devices %d: want 3..1000000", s.devices)
	case s.duration <= 0 || s.rate < 100 || s.heartbeat <= 0 || s.lostAfter <= s.heartbeat:
		return s, fmt.Errorf("-duration %v, -rate %d, -heartbeat %v, -lost-after %v: want positive, rate ≥ 100, lost-after > heartbeat",
			s.duration, s.rate, s.heartbeat, s.lostAfter)
	}
	return s, nil
}

func main() {
	if name := os.Getenv(envNode); name != "" {
		os.Exit(child(name))
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "clusterdemo:", err)
		os.Exit(1)
	}
}

// final is what a node reports when it has stopped producing and its
// sends have settled.
type final struct {
	Node                      string
	Accepted, Refused         uint64 // SendID nil / an error
	Sent, Confirmed           uint64 // carried to other nodes, confirmed there
	Nacked, Lost, Dropped     uint64
	HeldRefused, InFlight     uint64
	Observed                  uint64 // telemetry handled by this node's device agents
	EngineDeadLetters, Agents uint64
}

// errAccounting is the error of a run whose accounting does not add up.
var errAccounting = errors.New("the accounting does not add up")

// run is the parent: server, nodes, kill, figures.
func run(args []string, out, errOut io.Writer) error {
	s, err := parse(args, errOut)
	if err != nil {
		return err
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	go ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats server not ready")
	}
	errOut = &lockedWriter{w: errOut} // the nodes' stderr, copied on one goroutine each
	self, err := os.Executable()
	if err != nil {
		return err
	}
	victimOwns := 0
	for i := range s.devices {
		if cluster.OwnerOf(names, deviceID(i)) == victim {
			victimOwns++
		}
	}
	fmt.Fprintf(out, "nats %s; %d devices on %v, %d (%.3f) owned by %s\n", ns.ClientURL(), s.devices, names, victimOwns, float64(victimOwns)/float64(s.devices), victim)

	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
	}
	procs := map[string]*proc{}
	lines := make(chan [2]string, 256)
	var readers sync.WaitGroup
	defer func() {
		for _, p := range procs {
			_ = p.stdin.Close()
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	}()
	for _, name := range names {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), envNode+"="+name, envURL+"="+ns.ClientURL(), envArgs+"="+strings.Join(args, "\x1f"))
		cmd.Stderr = errOut
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs[name] = &proc{cmd, stdin}
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- [2]string{name, sc.Text()}
			}
		}()
	}
	timeout := time.After(s.duration + 10*s.lostAfter + 30*time.Second)
	next := func() ([2]string, error) {
		select {
		case l := <-lines:
			return l, nil
		case <-timeout:
			return [2]string{}, errors.New("timed out waiting for the nodes")
		}
	}
	for ready := 0; ready < len(names); {
		l, err := next()
		if err != nil {
			return err
		}
		if l[1] == "READY" {
			ready++
		}
	}
	for _, p := range procs {
		fmt.Fprintln(p.stdin, "GO")
	}
	start := time.Now()
	fmt.Fprintf(out, "all nodes joined; producing for %v, %d msg/s per node; %s is killed at %v\n", s.duration, s.rate, victim, s.duration/2)
	kill := time.After(s.duration / 2)
	var killedAt time.Time
	var detected, rehomed []time.Duration
	finals := map[string]final{}
	for len(finals) < len(names)-1 {
		select {
		case <-kill:
			_ = procs[victim].cmd.Process.Signal(syscall.SIGKILL)
			killedAt = time.Now()
			fmt.Fprintf(out, "%6.2fs  SIGKILL %s\n", time.Since(start).Seconds(), victim)
			continue
		default:
		}
		var l [2]string
		select {
		case l = <-lines:
		case <-kill:
			_ = procs[victim].cmd.Process.Signal(syscall.SIGKILL)
			killedAt = time.Now()
			fmt.Fprintf(out, "%6.2fs  SIGKILL %s\n", time.Since(start).Seconds(), victim)
			continue
		case <-timeout:
			return errors.New("timed out waiting for the nodes' final figures")
		}
		name, text := l[0], l[1]
		kind, rest, _ := strings.Cut(text, " ")
		switch kind {
		case "LIVE":
			fmt.Fprintf(out, "%6.2fs  %s %s\n", time.Since(start).Seconds(), name, rest)
		case "LOST", "REHOMED":
			at, _ := strconv.ParseInt(rest, 10, 64)
			d := time.Unix(0, at).Sub(killedAt)
			if kind == "LOST" {
				detected = append(detected, d)
				fmt.Fprintf(out, "%6.2fs  %s declared %s lost, %v after the kill\n", time.Since(start).Seconds(), name, victim, d.Round(time.Millisecond))
			} else {
				rehomed = append(rehomed, d)
				fmt.Fprintf(out, "%6.2fs  %s re-created its first device of %s's, %v after the kill\n", time.Since(start).Seconds(), name, victim, d.Round(time.Millisecond))
			}
		case "FINAL":
			var f final
			if err := json.Unmarshal([]byte(rest), &f); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			finals[name] = f
		}
	}
	var sum final
	for _, name := range names[:2] {
		f := finals[name]
		fmt.Fprintf(out, "final %s: accepted %d, carried to others %d (confirmed %d, lost %d, refused %d, dropped %d), held refused %d, in flight %d; observed %d, agents %d, engine dead letters %d\n",
			name, f.Accepted, f.Sent, f.Confirmed, f.Lost, f.Nacked, f.Dropped, f.HeldRefused, f.InFlight, f.Observed, f.Agents, f.EngineDeadLetters)
		sum.Accepted += f.Accepted
		sum.Sent += f.Sent
		sum.Confirmed += f.Confirmed
		sum.Nacked += f.Nacked
		sum.Lost += f.Lost
		sum.Dropped += f.Dropped
		sum.HeldRefused += f.HeldRefused
		sum.InFlight += f.InFlight
	}
	bound := s.lostAfter + s.heartbeat
	within := "within"
	if maxOf(detected) > bound+s.heartbeat { // a heartbeat's grace: the check runs at heartbeats
		within = "OVER"
	}
	fmt.Fprintf(out, "re-home: %s declared lost after %s (%s the bound of %v); first device re-created after %s\n",
		victim, show(maxOf(detected)), within, bound, show(maxOf(rehomed)))
	local := sum.Accepted - sum.Sent - sum.HeldRefused
	delivered := local + sum.Confirmed
	dead := sum.Nacked + sum.Lost + sum.Dropped + sum.HeldRefused
	verdict := "exact"
	if sum.Accepted != delivered+dead || sum.InFlight != 0 {
		verdict = "MISMATCH"
	}
	fmt.Fprintf(out, "accounting (cluster-wide, the sends of %s and %s): accepted %d = delivered %d (on the sender's node %d + confirmed by another %d) + dead-lettered %d (lost with %s %d, refused %d, dropped %d): %s\n",
		names[0], names[1], sum.Accepted, delivered, local, sum.Confirmed, dead, victim, sum.Lost, sum.Nacked+sum.HeldRefused, sum.Dropped, verdict)
	for _, name := range names[:2] {
		_ = procs[name].stdin.Close()
		_ = procs[name].cmd.Wait()
	}
	_ = procs[victim].cmd.Wait()
	procs = nil
	readers.Wait()
	if verdict != "exact" {
		return errAccounting
	}
	if len(detected) < 2 {
		return fmt.Errorf("%s not declared lost by both survivors", victim)
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// maxOf returns the longest of ds, -1 for none.
func maxOf(ds []time.Duration) time.Duration {
	m := time.Duration(-1)
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func show(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

func deviceID(i int) engine.AgentID { return engine.AgentID{Type: "device", Key: gateway.DeviceKey(i)} }

// child runs one node; it reports on stdout (READY, LIVE, LOST, REHOMED,
// FINAL) and takes GO, then end of input, on stdin.
func child(name string) int {
	var args []string
	if a := os.Getenv(envArgs); a != "" {
		args = strings.Split(a, "\x1f")
	}
	s, err := parse(args, os.Stderr)
	if err != nil {
		return 2
	}
	if err := runNode(name, os.Getenv(envURL), s, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func runNode(name, url string, s settings, in io.Reader, out io.Writer) error {
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", a...)
	}
	members := make(chan int, 64)
	var lostAt atomic.Int64
	n, err := cluster.New(cluster.Config{Name: name, URL: url, Heartbeat: s.heartbeat, LostAfter: s.lostAfter,
		OnEvent: func(ev cluster.Event) {
			if ev.Kind == cluster.MemberLost && ev.Node == victim {
				lostAt.Store(time.Now().UnixNano())
				say("LOST %d", lostAt.Load())
			}
			select {
			case members <- len(ev.Members):
			default:
			}
		}})
	if err != nil {
		return err
	}
	var observed atomic.Uint64
	var rehomed sync.Once
	devices, err := gateway.NewStandaloneDevices(8, &observed, func(c *engine.Context, restored bool) {
		if lostAt.Load() != 0 && cluster.OwnerOf(names, c.ID()) == victim {
			rehomed.Do(func() { say("REHOMED %d", time.Now().UnixNano()) })
		}
	})
	if err != nil {
		return err
	}
	e, err := engine.New(engine.WithCluster(n))
	if err != nil {
		return err
	}
	if err := e.Register("device", devices, engine.Mailbox(1024, engine.Reject)); err != nil {
		return err
	}
	if err := e.Start(); err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	}()
	if err := n.Join(e); err != nil {
		return err
	}
	defer n.Close()
	for len(n.Members()) < len(names) {
		<-members
	}
	say("READY")
	sc := bufio.NewScanner(in)
	if !sc.Scan() || sc.Text() != "GO" {
		return errors.New("no GO from the parent")
	}

	// Produce: this node's third of the devices, round robin, paced.
	idx := 0
	for i, nm := range names {
		if nm == name {
			idx = i
		}
	}
	var accepted, refused atomic.Uint64
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(s.rate/100, 1)
		dev, seq := idx, uint16(0)
		buf := make([]byte, gateway.PayloadSize)
		origin := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range per {
				seq++
				p := gateway.DeviceTelemetry(buf, int64(time.Since(origin)), uint32(dev), seq%8, float64(seq%120))
				if e.SendID(deviceID(dev), append([]byte(nil), p...)) == nil {
					accepted.Add(1)
				} else {
					refused.Add(1)
				}
				if dev += len(names); dev >= s.devices {
					dev = idx
				}
			}
		}
	}()
	live := time.NewTicker(500 * time.Millisecond)
	defer live.Stop()
	end := time.After(s.duration)
	report := func() {
		st := n.Stats()
		say("LIVE members=%d agents=%d accepted=%d observed=%d carried=%d confirmed=%d in-flight=%d lost=%d",
			len(n.Members()), e.Stats().Agents, accepted.Load(), observed.Load(), st.Sent, st.Confirmed, st.InFlight, st.Lost)
	}
loop:
	for {
		select {
		case <-live.C:
			report()
		case <-end:
			break loop
		}
	}
	close(stop)
	<-produced
	// Settle: every send confirmed or reported, every message handled.
	settle := time.After(10*s.lostAfter + 10*time.Second)
settling:
	for n.Stats().InFlight > 0 {
		select {
		case <-live.C:
			report()
		case <-settle:
			break settling
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = e.WaitIdle(ctx)
	cancel()
	st, es := n.Stats(), e.Stats()
	b, _ := json.Marshal(final{Node: name, Accepted: accepted.Load(), Refused: refused.Load(),
		Sent: st.Sent, Confirmed: st.Confirmed, Nacked: st.Nacked, Lost: st.Lost, Dropped: st.Dropped,
		HeldRefused: st.HeldRefused, InFlight: st.InFlight, Observed: observed.Load(),
		EngineDeadLetters: es.DeadLetters, Agents: uint64(es.Agents)})
	say("FINAL %s", b)
	for sc.Scan() { // until the parent closes our input
	}
	return nil
}
