// Package cluster joins agentloop engines on several nodes over NATS: an
// agent ID has one owner node, and the ID-based sends, requests and
// publishes of every node reach it there.
//
// # Use
//
//	n, _ := cluster.New(cluster.Config{Name: "gw-1", URL: nats.DefaultURL})
//	e, _ := engine.New(engine.WithCluster(n))
//	// register types, e.Start()
//	_ = n.Join(e)      // connect, subscribe, heartbeat
//	...
//	_ = n.Leave()      // or n.Close() without a leave
//	_ = e.Stop(ctx)
//
// # Membership
//
// Each node publishes a heartbeat frame on <prefix>.hb every
// Config.Heartbeat (default 500 ms). A node first heard from is a member
// (MemberJoined); one not heard from for Config.LostAfter (default 3 s) is
// declared lost (MemberLost), checked at each of this node's heartbeats, so
// within LostAfter + Heartbeat; a node that calls Leave is dropped at once
// (MemberLeft), and heartbeats until it closes, so that a member that
// handles its leave late still sees it leave, not lost
// (TestBusyMemberSeesALeaveNotALoss). Every frame carries its node's incarnation, chosen at New:
// a node restarted under the same name is seen as the earlier one lost
// (MemberLost) and a new one joined (MemberJoined). Config.OnEvent hears each change with the members after
// it. Each node keeps its own view: views agree once the heartbeats of
// one interval have arrived everywhere.
//
// # Placement
//
// An ID's owner is chosen by rendezvous hashing over the live members of
// the view: every member scores (member, type, key) with a 64-bit hash and
// the highest score owns the ID (OwnerOf). When a member leaves, only the
// IDs it owned move, each to its second-best member: about 1/N of them
// for N members (TestPlacementMovesOnlyTheLeaversAgents measures 0.340,
// 0.198 and 0.103 for N = 3, 5, 10). Config.LocalTypes are owned by every
// node for itself and never leave it. Config.Weighted types are placed by
// headroom instead: weighted rendezvous hashing over the figures each
// member had when it joined, which its heartbeats carry, with per-type
// coefficients α+β+γ = 1 (see Weights): a member owns a share of them in
// proportion to its headroom, and a leave still moves only the leaver's.
//
// # What is transparent
//
// Engine.SendID, Engine.SendIDContext, Context.SendID, Engine.RequestID and
// Context.RequestID to an ID owned elsewhere travel as one frame to the
// owner's subject <prefix>.node.<name>; the owner spawns the agent through
// its type when it does not exist, as a local SendID would. Messages from
// one sender (one goroutine, or one agent) to one agent arrive in the
// order sent: one NATS connection per node, one subscription goroutine
// per subject. Publish reaches the local subscribers and every other
// node's, on <prefix>.pub.<topic> (a topic is a NATS subject); a type
// subscription feeds, and spawns, the key's agent only on its owner.
// Replies and request errors come back with an error code, so errors.Is
// matches the engine's sentinels (ErrNoReply, ErrTerminated,
// ErrMailboxFull, ErrUnknownType, ErrStopped, ErrTimeout, ...); a remote
// panic is ErrRemotePanic.
//
// Not transparent: a Ref always names a local agent (Ref sends never
// leave the node); a message from another node has a zero Message.Sender
// (a Message has no room for a remote ID), while a request from another
// node's agent names it through Context.RemoteSender; a send to another
// node returns once the frame is handed to NATS, so the owner's refusal
// (a full Reject mailbox, an unknown type, a terminated agent) comes back
// asynchronously as a DeadLetter on the sending node (Node.OnDeadLetter,
// Stats.Nacked) rather than as SendID's error. Order per sender holds
// across a graceful leave; across a crash, what was in flight to the lost
// node is reported, not re-sent.
//
// # Failure semantics
//
// Sends are accounted for. The sending node keeps each send frame until
// the owner acknowledges it; the owner acknowledges, cumulatively, the
// sends its engine took (at each of its heartbeats and every 512 sends),
// and refuses the rest. A send is therefore, on the node that made it,
// confirmed (Stats.Confirmed), refused by the owner (Stats.Nacked),
// dropped on the way (Stats.Dropped, ErrSlowConsumer: the owner sees the
// gap in the sequence numbers), or lost with its owner (Stats.Lost,
// ErrOwnerLost: the owner was declared lost, or restarted, before it
// confirmed the send): every one but the confirmed is a DeadLetter, with
// its payload, on OnDeadLetter. Stats.Sent is the sum of those and
// Stats.InFlight at every instant, so that cluster-wide, once quiet
// (InFlight and Stats.Held, the sends held for a handoff, 0 everywhere),
// accepted sends = delivered + dead-lettered. Delivered means taken by the
// owner's engine (in the agent's mailbox), as a local send's nil error
// does: a crash loses what its mailboxes held, and a send the crashed
// owner took but had not confirmed yet is reported lost although its
// agent may have handled it. So is a send to an owner declared lost
// although it was running, its heartbeats later than LostAfter: set
// LostAfter above the longest pause a loaded node may have.
//
// A graceful leave (Node.Leave) drains: the members drop the leaver from
// their views and acknowledge; each holds the sends and requests for the
// agents it takes over; the leaver lets its engine go idle, snapshots its
// agents (those implementing engine.StateSaver, without their queues: the
// engine is idle) and hands the snapshot to every member, which restores
// the agents it now owns (engine.Restore with OnlyIDs) and then releases
// what it held, in order. Nothing sent during the leave is lost or
// reordered (TestGracefulLeaveHandsOffState); a member that has not had
// the handoff after 2 × Config.Drain starts the agents without state. A
// node back under the leaver's name joins a member only once that member
// has the handoff, or gave it up (TestRejoinBeforeTheHandoffWaitsForIt).
// Requests waiting on the leaver fail with ErrOwnerLost. A publish that
// a type subscription would feed to a key being handed over is not held:
// it feeds no agent.
//
// # Backpressure
//
// A remote mailbox's overflow policy holds across the wire, applied by
// the owner's engine (engine.DeliverRemote): a full Reject mailbox
// refuses the send, which comes back as a DeadLetter with
// engine.ErrMailboxFull (TestRejectMailboxRefusesAcrossNodes); a full
// Block mailbox makes the owner wait for room at most Config.BlockFor,
// then refuses it the same way (TestBlockMailboxWaitsBlockForAcrossNodes);
// DropNewest and DropOldest drop on the owner, as its engine's dead
// letters, as on one node (where SendID returns nil for them too). While
// the owner waits on a Block mailbox, every frame behind it to that node
// waits in the NATS client's buffer (Config.PendingLimit per
// subscription). Past that NATS drops frames (its slow-consumer state):
// the owner counts them (Stats.SlowConsumer), sees the gap in the
// senders' sequence numbers (an idle sender probes at its heartbeats, so
// a gap at the end is seen too) and reports the sends it missed to their
// senders, as dead letters with ErrSlowConsumer (Stats.Dropped;
// TestSlowConsumerDropsAreDeadLetters).
//
// After a crash the lost node's IDs are owned by the survivors and
// re-created there, through their types, on their next message
// (TestCrashAccountsForEverySend; TestChaosKillRestartUnderLoad crashes,
// restarts and re-joins nodes under load). A send is addressed to the
// incarnation of its owner that the sender knew (see Frame): a later
// incarnation of that name never delivers it, so that a send reported
// lost when the sender declared the crashed incarnation lost is not
// delivered as well (TestSendToALostIncarnationIsNotDeliveredByItsSuccessor).
// The sends to a node that restarted before it was declared lost are
// settled by its new incarnation: it refuses those addressed to the
// earlier one that reach it, and its first acknowledgement reports those
// it never saw, all lost (TestSendToARestartedNodeIsSettledOnce); the
// sends addressed to it are confirmed. A request whose owner is declared lost
// or leaves before it answers fails with ErrOwnerLost; one with a timeout
// fails with engine.ErrTimeout after it. A frame that does not decode
// (bad checksum, length, version or kind) is dropped and counted in
// Stats.Corrupt, never delivered.
//
// # Durable sends (Config.JetStream)
//
// With Config.JetStream (set alike on every node; the NATS server must
// run JetStream) a send to an agent on another node is published to a
// work-queue stream, Config.Stream (default AGENTLOOP_SENDS, file
// storage), on the owner's subject <prefix>.js.<name>, and SendID returns
// once the stream acknowledged it (its PubAck): an accepted send. Each
// node takes its subject's messages through a durable consumer named
// after it, one message at a time, hands each to its engine
// (engine.DeliverRemote, as without the option) and acknowledges it to
// the stream once the engine took or refused it; a refusal comes back to
// the sender as a DeadLetter as before. The accounting of the sending
// node is unchanged (Confirmed once the owner's engine took the send),
// but sends are never dropped on the way, nor failed when their owner is
// declared lost: they wait in the stream for it.
//
// Ownership waits for the owner's return: a member declared lost (it
// crashed, or restarted under the same name) leaves Members and the
// membership events, but placement keeps it, so its IDs do not move and
// the sends to them queue in the stream (TestJetStreamSendsWaitForTheirOwnersRestart).
// When a node of that name joins again, its consumer, made afresh at Join,
// takes them first, in stream order: every accepted send reaches its
// agent once, in order per sender. Requests are not durable: a request
// to an agent whose owner is down fails at once with ErrOwnerLost, and a
// request, which does not go through the stream, may overtake the sends
// made before it. Only a graceful leave moves a node's IDs: the leaver
// takes what its subject still holds into its agents before it snapshots
// them (TestJetStreamLeaveTakesTheStreamBeforeItsSnapshot). A node that
// never comes back keeps its IDs, and the sends to them stay in flight,
// until a node of its name joins or the stream is purged.
//
// Delivery is once unless the owner crashes between handing a message to
// its engine and the stream's record of its acknowledgement: that message
// is given again to its next incarnation. As without the option, a crash
// loses what its mailboxes held, and a send that the crashed owner took
// but had not confirmed is reported lost on its sender although it was
// delivered. A SendID whose publish failed (the stream did not confirm it
// in time) returns the error, although the stream may have stored it.
//
// # Frame
//
// Every frame is laid out as Frame documents: version (FrameVersion, 2),
// kind, priority, code, timestamp (unix ns), sequence, incarnation, target
// incarnation, the sending node, the sending and target agent IDs, the
// reply subject, the payload and a CRC-32C (Castagnoli) of all the bytes
// before it. The target incarnation is that of the destination node the
// sender addressed (0 for any, as in a durable send): a node refuses a
// frame addressed to another incarnation of itself, so that a node
// restarted under the name of one its senders declared lost does not
// deliver what they already reported lost (a send is nacked as lost,
// ErrOwnerLost, and a request answered with it; a reply or nack to an
// earlier incarnation is dropped). A frame of version 1 (without the
// target incarnation) is refused as corrupt. DecodeFrame is bounded by the
// field limits (MaxNameLen, MaxPayloadLen) and never panics
// (FuzzDecodeFrame).
package cluster
