#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm back end's integration test.
#
#   scripts/slurm-test-cluster.sh up      # install (as root, if missing) and start; idempotent
#   scripts/slurm-test-cluster.sh down    # stop the daemons and remove the state directory
#   scripts/slurm-test-cluster.sh status
#
# Everything lives in $ABLATE_SLURM_DIR (default /tmp/ablate-slurm): slurm.conf, state, logs,
# pid files. Clients find the cluster through SLURM_CONF=$ABLATE_SLURM_DIR/slurm.conf (the
# integration test sets it itself). No munge: AuthType=auth/none, CredType=cred/none, and
# 127.0.0.1 for the controller and the node, so neither DNS nor a key is needed.
# Measured on Debian 12 (Slurm 22.05.8): install ~20 s, `up` with the packages present < 2 s.
set -euo pipefail

DIR=${ABLATE_SLURM_DIR:-/tmp/ablate-slurm}
CONF=$DIR/slurm.conf
PACKAGES="slurmctld slurmd slurm-client"
export SLURM_CONF=$CONF

# A pid that is alive and not a zombie (a slowly reaping PID 1 keeps dead daemons visible to kill -0).
alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -r "/proc/$pid/stat" ] || return 1
    [ "$(awk '{print $3}' "/proc/$pid/stat")" != Z ]
}

install_packages() {
    local missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "error: missing packages:$missing; run 'sudo apt-get install --no-install-recommends$missing'" >&2
        exit 1
    fi
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

write_conf() {
    local host node
    host=$(hostname -s)
    # The node line as slurmd measures it (CPUs, sockets, cores, memory), pointed at 127.0.0.1.
    node=$(slurmd -C | head -1)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat > "$CONF" <<EOF
ClusterName=ablate-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
# Finished jobs stay visible to squeue / scontrol for 10 minutes (there is no sacct).
MinJobAge=600
SchedulerParameters=sched_interval=1
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
    install_packages
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        echo "Slurm test cluster already up (SLURM_CONF=$CONF)"; return 0
    fi
    write_conf
    alive "$DIR/slurmctld.pid" || slurmctld -i -f "$CONF"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 1 50); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "Slurm test cluster up: $(sinfo -h -o '%P %D %T %C') (SLURM_CONF=$CONF)"
            return 0
        fi
        sleep 0.2
    done
    echo "error: the node did not become idle; see $DIR/log/" >&2
    sinfo >&2 || true
    exit 1
}

down() {
    for d in slurmd slurmctld; do
        if alive "$DIR/$d.pid"; then
            local pid; pid=$(cat "$DIR/$d.pid")
            kill "$pid"
            for _ in $(seq 1 50); do alive "$DIR/$d.pid" || break; sleep 0.1; done
        fi
    done
    rm -rf "$DIR"
    echo "Slurm test cluster down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && sinfo || { echo "down"; exit 1; } ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
