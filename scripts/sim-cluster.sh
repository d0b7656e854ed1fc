#!/usr/bin/env bash
# A simulated cluster on one machine, for the tests that run recis-convert across nodes (issue 36). Each node is a
# network namespace, a UTS namespace (its own hostname) and a mount namespace (its own node-local storage), held by
# one sleeping process, "the node"; the nodes' cables meet at a bridge in a "switch" namespace of its own, so the
# private addresses exist only inside namespaces this script made. Open MPI's rsh launcher enters a node through
# `agent` (as ssh would reach a real one) and ranks talk over TCP. The file system stays shared, as a parallel file
# system is, except $RECIS_CLUSTER_DIR/local: a tmpfs of each node's own (a node's /tmp or local disk; outside the
# nodes an empty directory).
#
#   scripts/sim-cluster.sh up N           bring up nodes recis-node1..N (replacing any this script left before)
#   scripts/sim-cluster.sh down           kill every process inside the nodes, remove every namespace made
#   scripts/sim-cluster.sh exec NODE CMD  run CMD on NODE (mpirun runs on recis-node1: rank 0's node)
#   $RECIS_CLUSTER_DIR/agent NODE CMD     Open MPI's rsh agent (--mca plm_rsh_agent): a link to this script made by
#                                         `up`, since the agent option takes a program, not a program and arguments
#   scripts/sim-cluster.sh cut NODE       take NODE's cable out of the switch (a network partition)
#   scripts/sim-cluster.sh mend NODE      put it back
#   scripts/sim-cluster.sh kill NODE      SIGKILL every process on NODE but the node itself (a lost node)
#   scripts/sim-cluster.sh hostfile       print an Open MPI hostfile for the nodes that are up (2 slots each)
#   scripts/sim-cluster.sh mpirun-args    print the mpirun options for this cluster (launcher, TCP, hostfile)
#
# Needs root (namespaces). Names: netns recis-node<k> and recis-switch, bridge recis-br, cables recis-c<k>;
# addresses 10.213.77.<k>/24; the node's pid in $RECIS_CLUSTER_DIR/recis-node<k>.pid. RECIS_CLUSTER_TCP_RETRIES
# sets the nodes' net.ipv4.tcp_retries2 (see `up`).
set -euo pipefail

DIR=${RECIS_CLUSTER_DIR:-/run/recis-cluster}
SWITCH=recis-switch
BRIDGE=recis-br
SUBNET=10.213.77
SLOTS=2
SELF=$(readlink -f "${BASH_SOURCE[0]}")

node_index() {  # recis-node<k> -> k
  [[ $1 =~ ^recis-node([0-9]+)$ ]] || { echo "sim-cluster: not a node name: $1" >&2; exit 2; }
  echo "${BASH_REMATCH[1]}"
}

nodes_up() { ip netns list | awk '{print $1}' | grep -E '^recis-node[0-9]+$' | sort -V || true; }

node_pid() { cat "$DIR/$1.pid"; }

# enter NODE CMD...: CMD on NODE, in the current directory. The namespaces are the node process's, reached through
# /proc, so this works from inside another node as well as from outside.
enter() {
  local node=$1; shift
  nsenter --target "$(node_pid "$node")" --net --uts --mount --wd="$PWD" -- "$@"
}

# every process in NODE's network namespace but the node itself
kill_node() {
  local node=$1 keep pids
  keep=$(cat "$DIR/$node.pid" 2>/dev/null || true)
  pids=$(ip netns pids "$node" 2>/dev/null | grep -vx "${keep:-none}" || true)
  [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
}

down() {
  local node pids
  for node in $(nodes_up) "$SWITCH"; do
    pids=$(ip netns pids "$node" 2>/dev/null || true)
    [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
    ip netns delete "$node" 2>/dev/null || true
  done
  rm -f "$DIR/hostfile" "$DIR/agent" "$DIR"/recis-node*.log "$DIR"/recis-node*.pid
}

up() {
  local count=$1 k node
  [[ $count =~ ^[1-9][0-9]?$ ]] || { echo "sim-cluster: up takes a node count (1-99), not '$count'" >&2; exit 2; }
  down
  mkdir -p "$DIR/local"
  ip netns add "$SWITCH"
  ip -n "$SWITCH" link add "$BRIDGE" type bridge
  ip -n "$SWITCH" link set "$BRIDGE" up
  ln -sf "$SELF" "$DIR/agent"
  : >"$DIR/hostfile"
  for k in $(seq 1 "$count"); do
    node=recis-node$k
    ip netns add "$node"
    # the cable: eth0 inside the node, recis-c<k> plugged into the switch's bridge
    ip link add "recis-c$k" netns "$SWITCH" type veth peer name eth0 netns "$node"
    ip -n "$SWITCH" link set "recis-c$k" master "$BRIDGE" up
    ip -n "$node" link set lo up
    ip -n "$node" addr add "$SUBNET.$k/24" dev eth0
    ip -n "$node" link set eth0 up
    # How long TCP retransmits to a peer that stopped answering before it gives up on the connection: Linux's
    # default 15 retries take about 15 minutes; the tests take 5 (about 13 s) so that mpirun, which waits for its
    # connection to a cut-off node to fail, ends in test time.
    ip netns exec "$node" sysctl -q -w net.ipv4.tcp_retries2="${RECIS_CLUSTER_TCP_RETRIES:-15}"
    # the node: its hostname and its local storage, held by a process that sleeps until `down`
    rm -f "$DIR/$node.pid"
    ip netns exec "$node" unshare --uts --mount --propagation private sh -c \
      "hostname $node && mount -t tmpfs -o size=64m local-$node '$DIR/local' && echo \$\$ >'$DIR/$node.pid.new' &&
       mv '$DIR/$node.pid.new' '$DIR/$node.pid' && exec sleep infinity" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 100); do [[ -s $DIR/$node.pid ]] && break; sleep 0.05; done
    [[ -s $DIR/$node.pid ]] || { echo "sim-cluster: $node did not come up" >&2; exit 1; }
    echo "$node slots=$SLOTS" >>"$DIR/hostfile"
  done
}

# invoked as the agent link: "agent NODE word..."
[[ $(basename "$0") == agent ]] && set -- agent "$@"

case ${1:-} in
  up) up "${2:-3}" ;;
  down) down ;;
  exec) shift; node=$1; shift; node_index "$node" >/dev/null; enter "$node" "$@" ;;
  agent)
    # Called by Open MPI's rsh launcher as ssh would be: "agent [ssh options] NODE word...". The words are one
    # command line for the remote shell, so they are joined and given to sh, as sshd does.
    shift
    while [[ ${1:-} == -* ]]; do shift; done
    node=$1; shift
    node_index "$node" >/dev/null
    # The node's processes write into a log of the node's own, not into the launcher's pipe, which a process left on
    # a cut-off node would hold open. Like ssh without ServerAliveInterval (its default), the agent lasts as long as
    # the remote command, even when the node's cable is cut.
    exec nsenter --target "$(node_pid "$node")" --net --uts --mount --wd="$PWD" -- \
      /bin/sh -c "$*" </dev/null >>"$DIR/$node.log" 2>&1 ;;
  cut) ip -n "$SWITCH" link set "recis-c$(node_index "$2")" down ;;
  mend) ip -n "$SWITCH" link set "recis-c$(node_index "$2")" up ;;
  kill) node_index "$2" >/dev/null; kill_node "$2" ;;
  hostfile) cat "$DIR/hostfile" ;;
  mpirun-args)
    echo "--hostfile $DIR/hostfile --mca plm_rsh_agent $DIR/agent --mca btl tcp,self" \
         "--mca btl_tcp_if_include $SUBNET.0/24 --mca oob_tcp_if_include $SUBNET.0/24" ;;
  *) sed -n '2,24p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
