#!/usr/bin/env bash
# A one-node Slurm on localhost for the test suite: Debian's slurm-wlm (slurmctld, slurmd) and munge, configured in
# a directory of its own and started without systemd, so it works on a CI machine and on a workstation alike.
#
#   scripts/slurm-local.sh start    install (Debian packages), configure and start; prints the environment to use
#   scripts/slurm-local.sh stop     stop what `start` started (its own pid files only), keep the state directory
#   scripts/slurm-local.sh env      print `export SLURM_CONF=...` for a running one
#
# State: $RECIS_SLURM_DIR (default /var/tmp/recis-slurm): slurm.conf, the munge key and socket, spool, logs, pid
# files. Nothing in /etc is touched: the daemons take -f/--key-file/--socket, the clients $SLURM_CONF, and
# slurm.conf points Slurm's munge plugin to the private socket. The node is this host with its real CPU count;
# one partition `test`; KillWait 5 s; proctrack/linuxproc and task/none (no cgroups needed); select/cons_tres.
# Jobs run as the non-root user $RECIS_SLURM_USER (default recis-slurm, created if missing), since mpirun refuses
# root. Needs root. About 10-30 s.
set -euo pipefail

DIR=${RECIS_SLURM_DIR:-/var/tmp/recis-slurm}
JOB_USER=${RECIS_SLURM_USER:-recis-slurm}
HOST=$(hostname -s)

start() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
  fi
  id "$JOB_USER" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$JOB_USER"
  stop_daemons
  mkdir -p "$DIR"/{munge,spool/ctld,spool/d,log,run}
  chmod 0755 "$DIR" "$DIR/spool" "$DIR/log" "$DIR/run"
  chmod 0700 "$DIR/munge"
  if [[ ! -s $DIR/munge/munge.key ]]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 0400 "$DIR/munge/munge.key"
  local cpus memory
  cpus=$(nproc)
  memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))
  cat >"$DIR/slurm.conf" <<EOF
# written by scripts/slurm-local.sh: a one-node Slurm for recis-convert's tests
ClusterName=recis-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=600
InactiveLimit=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  chmod 0777 "$DIR/munge"  # the job user's clients reach the socket; the key stays 0400
  chmod 0400 "$DIR/munge/munge.key"
  slurmctld -f "$DIR/slurm.conf" -i
  slurmd -f "$DIR/slurm.conf"
  export SLURM_CONF=$DIR/slurm.conf
  local waited=0
  until sinfo -h -o %T 2>/dev/null | grep -qx idle; do
    (( waited++ < 60 )) || { echo "slurm-local.sh: the node did not come up; see $DIR/log" >&2; exit 1; }
    sleep 0.5
  done
  echo "export SLURM_CONF=$DIR/slurm.conf"
}

# Kills the daemons named by this directory's pid files, and nothing else.
stop_daemons() {
  local name pid
  for name in slurmd slurmctld munged; do
    pid=$(cat "$DIR/run/$name.pid" 2>/dev/null || true)
    [[ -n $pid ]] || continue
    if [[ -d /proc/$pid ]] && grep -q "$name" "/proc/$pid/comm" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
      [[ -d /proc/$pid ]] && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/run/$name.pid"
  done
}

case ${1:-} in
  start) start ;;
  stop) stop_daemons ;;
  env) echo "export SLURM_CONF=$DIR/slurm.conf" ;;
  *) echo "usage: $0 start | stop | env" >&2; exit 2 ;;
esac
