package cluster

// DeclareLost makes n declare member name lost now, as its heartbeat does
// once name has not been heard from for LostAfter: the tests drive the
// membership with it instead of waiting on the clock.
func DeclareLost(n *Node, name string) { n.memberGone(MemberLost, name, false) }
