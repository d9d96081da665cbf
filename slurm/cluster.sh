#!/usr/bin/env bash
# A real single-node Slurm cluster on this Debian machine, for the tests, CI and anyone who wants to
# try the project's Slurm path locally. It is also meant to be read as an example of the smallest
# working setup: one machine is both the controller (slurmctld) and the only compute node (slurmd),
# authentication is MUNGE, and there is no database (no slurmdbd, no accounting).
#
#   slurm/cluster.sh install   # as root: Debian's slurm-wlm and munge packages (once)
#   slurm/cluster.sh start     # as root: config, key and daemons; waits until the node is idle
#   slurm/cluster.sh status    # sinfo and squeue; non-zero when the controller does not answer
#   slurm/cluster.sh stop      # as root: stops what `start` started (harmless when nothing runs)
#
# Everything lives in one state directory, $SLURM_STATE (default /var/tmp/ewmtcnn-slurm):
#   slurm.conf            the configuration (also copied to /etc/slurm/slurm.conf, see below)
#   munge/                the MUNGE key, socket, pid file and log (owned by the munge user)
#   ctld/ slurmd/         slurmctld's saved state and slurmd's spool
#   log/ run/             the daemons' logs and pid files
# Nothing is started through systemd: the daemons run as plain background processes, so this works
# in containers and CI machines without an init system.
set -euo pipefail

STATE="${SLURM_STATE:-/var/tmp/ewmtcnn-slurm}"
case "$STATE" in
    /*) ;;
    *) STATE="$(pwd)/$STATE" ;;  # the daemons need an absolute path
esac
CONF="$STATE/slurm.conf"
# Debian's slurm commands read /etc/slurm/slurm.conf unless SLURM_CONF says otherwise.
ETC_CONF=/etc/slurm/slurm.conf
MARK="# Written by slurm/cluster.sh of the ewmtcnn project; rewritten by its next start."
MUNGE_DIR="$STATE/munge"
MUNGE_KEY="$MUNGE_DIR/munge.key"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket.2"
MUNGE_PID="$MUNGE_DIR/munged.pid"
CTLD_PID="$STATE/run/slurmctld.pid"
SLURMD_PID="$STATE/run/slurmd.pid"
WAIT_S=60

# The script's own slurm commands (sinfo, scontrol, ...) always use the state directory's config,
# whatever /etc/slurm/slurm.conf holds.
export SLURM_CONF="$CONF"

say() { echo "slurm/cluster.sh: $*"; }
die() { echo "slurm/cluster.sh: error: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "'$1' must run as root (the daemons run as root and munge)"; }

installed() {
    local cmd
    for cmd in slurmctld slurmd munged sbatch; do
        command -v "$cmd" >/dev/null 2>&1 || return 1
    done
}

cmd_install() {
    if installed; then
        say "slurmctld, slurmd, munged and sbatch are already installed"
        return 0
    fi
    need_root install
    # slurm-wlm pulls in slurmctld, slurmd and the client commands (sbatch, squeue, ...).
    # --no-install-recommends keeps out slurmdbd's MariaDB client, X11 tools and the like.
    # On a machine with systemd the packages also enable their own services; this script does not
    # use them (its munged listens on its own socket, its daemons read their own config).
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge
    installed || die "the packages are installed but slurmctld, slurmd, munged or sbatch is missing"
}

# pid_alive PIDFILE NAME: the pid file's process is running and is NAME (not a recycled pid).
pid_alive() {
    local pid stat comm
    [ -s "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # A zombie (state Z: exited, not yet reaped, as happens where pid 1 is no real init) is gone.
    read -r stat comm < <(ps -p "$pid" -o stat=,comm= 2>/dev/null) || return 1
    [[ "$stat" != Z* ]] || return 1
    case "$comm" in
        "$2" | "$2"-*) return 0 ;;  # Debian's slurmd is slurmd-wlm behind an alternative
        *) return 1 ;;
    esac
}

# stop_daemon PIDFILE NAME: SIGTERM, up to 30 s for it to exit, then SIGKILL.
stop_daemon() {
    local pid i
    if pid_alive "$1" "$2"; then
        pid="$(cat "$1")"
        say "stopping $2 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            pid_alive "$1" "$2" || break
            sleep 0.1
        done
        if pid_alive "$1" "$2"; then
            say "$2 (pid $pid) did not exit after 30 s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -f "$1"
}

cmd_stop() {
    need_root stop
    # slurmd first (it reports to slurmctld), munged last (both daemons authenticate through it).
    # Jobs that are still running keep running under their slurmstepd; a later start's slurmd
    # picks them up again, or `scancel` them before stopping.
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
    stop_daemon "$MUNGE_PID" munged
    say "stopped (state kept in $STATE)"
}

controller_answers() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# The node's state as sinfo prints it: idle, mixed, allocated ... with a * when it does not respond.
node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1; }

node_ready() {
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}

running() {
    pid_alive "$MUNGE_PID" munged && pid_alive "$CTLD_PID" slurmctld &&
        pid_alive "$SLURMD_PID" slurmd && controller_answers && node_ready
}

print_logs() {
    local f
    for f in "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" "$MUNGE_DIR/munged.log"; do
        [ -f "$f" ] || continue
        echo "---- last lines of $f" >&2
        tail -n 20 "$f" >&2
    done
}

# A failed start prints the daemons' last log lines, stops what it started and exits non-zero.
fail_start() {
    print_logs
    stop_daemon "$SLURMD_PID" slurmd >&2
    stop_daemon "$CTLD_PID" slurmctld >&2
    stop_daemon "$MUNGE_PID" munged >&2
    die "Slurm did not start: $* (logs above and in $STATE/log)"
}

setup_munge() {
    # MUNGE authenticates every message between the commands and the daemons with a key shared by
    # all nodes: here one node, so one key. munged refuses a key, socket or log whose permissions
    # are loose, hence the munge-owned directory (0711: clients must reach the socket) and the
    # 0400 key. The key is kept across restarts.
    install -d -o munge -g munge -m 0711 "$MUNGE_DIR"
    if [ ! -s "$MUNGE_KEY" ]; then
        if command -v mungekey >/dev/null 2>&1; then
            runuser -u munge -- mungekey --create --keyfile="$MUNGE_KEY"
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    # munged runs as the munge user, as Debian's service does, on its own socket so it neither
    # needs nor disturbs a system munged on /run/munge. slurm.conf's AuthInfo points Slurm there.
    runuser -u munge -- munged --key-file="$MUNGE_KEY" --socket="$MUNGE_SOCKET" \
        --pid-file="$MUNGE_PID" --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" ||
        fail_start "munged did not start"
    munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET" >/dev/null ||
        fail_start "munged started but a credential does not round-trip through $MUNGE_SOCKET"
}

write_conf() {
    local node_line mem tmp
    # `slurmd -C` prints this machine's NodeName line: CPUs, sockets, cores, threads and
    # RealMemory as slurmd will detect them when it registers.
    node_line="$(slurmd -C | grep '^NodeName=')" || die "slurmd -C printed no NodeName line"
    mem="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")"
    if [[ ! "$node_line" =~ \ CPUs=[0-9]+ ]] || [ -z "$mem" ]; then
        die "cannot read CPUs and RealMemory from: $node_line"
    fi
    # slurmctld drains a node that registers with less memory than configured: configure 98% of
    # it so that a slightly smaller reading (kernel reservations vary) never drains the node.
    node_line="${node_line/ RealMemory=$mem/ RealMemory=$((mem * 98 / 100))}"
    tmp="$(mktemp "$CONF.XXXXXX")"
    cat >"$tmp" <<EOF
$MARK
# A minimal single-node cluster: this machine ($NODE) is the controller and the only compute node.
ClusterName=ewmtcnn
# The controller's host; its address is the loopback one, so no DNS or /etc/hosts entry is needed
# and nothing leaves the machine.
SlurmctldHost=$NODE(127.0.0.1)
# The daemons run as root: no slurm user, directories or sudo rules to set up.
SlurmUser=root
SlurmdUser=root
# Commands and daemons prove who they are with MUNGE credentials, through this script's munged.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
# No cgroups: processes are tracked through their parent pids and tasks are not bound to CPUs,
# which works in containers and on machines whose cgroups Slurm cannot manage. The price: a job
# is not fenced in; it can use more CPUs or memory than it asked for.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
# Jobs get cores, not whole nodes: with CR_Core two 1-CPU jobs (or array tasks) run side by side
# on a 2-core machine. Memory is not a consumable resource here (CR_Core, not CR_Core_Memory).
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# No mail on this machine: --mail-type is accepted and does nothing (the default, /bin/mail, is
# missing and slurmctld logs an error at every start).
MailProg=/bin/true
# A node that was DOWN (say, slurmd stopped for a while) returns to service as soon as its slurmd
# registers again with a valid configuration, without an 'scontrol update'.
ReturnToService=2
# No database: no slurmdbd, no sacct. Finished jobs stay visible to 'scontrol show job' and
# 'squeue -t all' for MinJobAge seconds, then are forgotten.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=300
# Every file the daemons write lives under one directory.
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# The one node, as slurmd -C detected it (RealMemory 98% of it, see above), reached on loopback.
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
# One partition holding the node, used when a job names none, with no time limit.
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 0644 "$tmp"
    mv -f "$tmp" "$CONF"
}

# Once the cluster is up, its config is copied to /etc/slurm/slurm.conf, where Debian's commands
# look by default, so that every user can run plain sbatch/squeue without exporting SLURM_CONF.
# A config there that this script did not write is left alone; users then export SLURM_CONF.
publish_conf() {
    if [ ! -e "$ETC_CONF" ] || head -n 1 "$ETC_CONF" | grep -qxF "$MARK"; then
        if ! cmp -s "$CONF" "$ETC_CONF"; then
            install -d -m 0755 "$(dirname "$ETC_CONF")"
            install -m 0644 "$CONF" "$ETC_CONF"
        fi
        say "plain sbatch/squeue/sinfo work for every user (config copied to $ETC_CONF); elsewhere:"
    else
        say "warning: $ETC_CONF was not written by this script: left as it is"
        say "sbatch/squeue/sinfo need:"
    fi
    echo "export SLURM_CONF=$CONF"
}

cmd_start() {
    local i t0
    need_root start
    installed || die "Slurm or MUNGE is not installed: run 'slurm/cluster.sh install' first"
    t0=$SECONDS
    NODE="$(hostname -s)"
    if running; then
        say "already running (node $NODE, state in $STATE)"
        publish_conf
        return 0
    fi
    # Whatever is left of an earlier start (a daemon that died, a half-started cluster) is stopped
    # so that this start begins from a clean slate. The saved job state is kept.
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
    stop_daemon "$MUNGE_PID" munged
    install -d -m 0755 "$STATE" "$STATE/ctld" "$STATE/slurmd" "$STATE/log" "$STATE/run"
    setup_munge
    write_conf
    # Both daemons fork into the background once they have read the config.
    slurmctld -f "$CONF" || fail_start "slurmctld exited with status $?"
    slurmd -f "$CONF" || fail_start "slurmd exited with status $?"
    for ((i = 0; i < WAIT_S * 2; i++)); do
        if controller_answers && node_ready; then
            say "up in $((SECONDS - t0)) s: node $NODE $(node_state), state in $STATE"
            publish_conf
            return 0
        fi
        pid_alive "$CTLD_PID" slurmctld || [ "$i" -lt 10 ] || fail_start "slurmctld is not running"
        pid_alive "$SLURMD_PID" slurmd || [ "$i" -lt 10 ] || fail_start "slurmd is not running"
        sleep 0.5
    done
    sinfo -N -l >&2 || true
    fail_start "node $NODE not idle after $WAIT_S s (sinfo says '$(node_state)')"
}

cmd_status() {
    # Without its config file a Slurm command retries for 60 s before it gives up: fail at once.
    [ -f "$CONF" ] || die "no cluster configured in $STATE: run 'slurm/cluster.sh start'"
    if ! controller_answers; then
        echo "slurm/cluster.sh: the Slurm controller does not answer (config $CONF)" >&2
        exit 1
    fi
    sinfo
    squeue
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 install|start|stop|status   (state: \$SLURM_STATE, default /var/tmp/ewmtcnn-slurm)" >&2
        exit 2
        ;;
esac
