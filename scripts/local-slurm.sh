#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for testing profiles/slurm (tests/test_slurm.py).
#
#   sudo bash scripts/local-slurm.sh install   # Debian packages slurm-wlm + munge (once)
#   sudo bash scripts/local-slurm.sh up        # write slurm.conf, start munged, slurmctld, slurmd
#   sudo bash scripts/local-slurm.sh down      # stop the daemons, remove slurm.conf and the spool
#   bash scripts/local-slurm.sh status
#
# Daemons are started directly (no systemd). No accounting database: run Snakemake with
# --slurm-status-command squeue (without it the SLURM executor plugin waits forever for sacct).
# `down` removes /etc/slurm/slurm.conf: while it exists with the daemons stopped, every snakemake
# call waits 10 s for the plugin's `scontrol show config`.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
PIDS=(/run/slurm/slurmd.pid /run/slurm/slurmctld.pid /run/munge/munged.pid)

need_root() {
    [ "$(id -u)" = 0 ] || { echo "local-slurm.sh $1: run as root (it installs packages / starts daemons)" >&2; exit 1; }
}

wait_for() {  # wait_for <seconds> <description> <command...>
    local limit=$1 what=$2; shift 2
    for _ in $(seq $((limit * 4))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    echo "local-slurm.sh: $what did not come up within ${limit} s; see /var/log/slurm/" >&2
    return 1
}

do_install() {
    need_root install
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null; then
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
    fi
    echo "installed: $(slurmctld -V), munge $(munged -V 2>&1 | head -1)"
}

node_is_idle() { [ "$(sinfo -h -n "$1" -o %T 2>/dev/null)" = idle ]; }

do_up() {
    need_root up
    command -v slurmctld >/dev/null || { echo "local-slurm.sh up: SLURM is not installed; run: $0 install" >&2; exit 1; }
    do_down quiet
    local host mem
    host=$(hostname -s)
    getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    wait_for 10 munged bash -c 'munge -n | unmunge'
    install -d /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm /etc/slurm
    mem=$(awk '/MemAvailable/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    cat > "$CONF" <<EOF
# written by scripts/local-slurm.sh: one node, no accounting database
ClusterName=localcluster
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld
    wait_for 20 slurmctld bash -c 'scontrol ping | grep -q UP'
    slurmd
    wait_for 30 "node $host" node_is_idle "$host"
    echo "SLURM up: node $host, $(nproc) CPUs, ${mem} MB, partition debug"
}

do_down() {
    local pid
    for f in "${PIDS[@]}"; do
        if [ -s "$f" ]; then
            pid=$(cat "$f")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            rm -f "$f"
        fi
    done
    rm -f "$CONF"
    rm -rf /var/spool/slurmctld /var/spool/slurmd
    [ "${1:-}" = quiet ] || echo "SLURM down (daemons stopped, $CONF removed)"
}

do_status() {
    if [ -f "$CONF" ] && scontrol ping 2>/dev/null | grep -q UP; then
        sinfo
    else
        echo "SLURM is not running"
        return 1
    fi
}

case "${1:-}" in
    install) do_install ;;
    up) do_up ;;
    down) need_root down; do_down ;;
    status) do_status ;;
    *) echo "usage: $0 install|up|down|status" >&2; exit 2 ;;
esac
