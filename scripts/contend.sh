#!/usr/bin/env bash
# contend.sh N COMMAND...: run COMMAND while N busy-looping processes occupy
# the CPUs, as on a loaded machine, and exit with COMMAND's status. The busy
# loops end with the command, also when it is interrupted. make stress uses
# it to check that no test depends on CPU speed or share:
#   bash scripts/contend.sh 2 go test -race -count=3 ./engine/
set -u
n=${1:?usage: contend.sh N COMMAND...}
shift
case $n in
'' | *[!0-9]*)
	echo "contend.sh: N must be a number of busy loops, got '$n'" >&2
	exit 2
	;;
esac
if [ $# -eq 0 ]; then
	echo "usage: contend.sh N COMMAND..." >&2
	exit 2
fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq "$n"); do
	(while :; do :; done) &
	pids+=($!)
done
"$@"
