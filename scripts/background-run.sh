#!/usr/bin/env bash
# Long `mini` sweeps in the background, safe to leave running while you edit and rebuild.
#
#   scripts/background-run.sh start all --seeds 3     # any `ablate run` arguments after `start`
#   scripts/background-run.sh start zhang2022-table2,zhang2022-table3 --seeds 3   # several tables
#   scripts/background-run.sh after simsiam-table2 --seeds 3   # start this sweep when the running one ends
#   scripts/background-run.sh status                  # the live line and the tables finished so far
#   scripts/background-run.sh stop                    # Ctrl-C for the sweep: runs resume next time
#
# `start` snapshots the release binary and experiments/ into $ABLATE_BG (default .build/background),
# so rebuilding ablate or editing an experiment file does not change a sweep under way (a new
# binary must know every key of the experiment files it reads, and workers are started from the
# running binary). The sweep writes to the default database, results/ablate.sqlite, from the
# repository root; `ablate run` goes seed by seed (seed 0 of every row first) and resumes what an
# earlier sweep left unfinished. `stop` sends SIGINT: the scheduler stops its workers and records
# their runs as interrupted (they resume from their last finished epoch), then the database's WAL
# is folded in so that results/ablate.sqlite can be committed.
# While a sweep runs, never `git stash`, `git checkout` or `git reset --hard` results/ablate.sqlite:
# git replaces the file, and the scheduler goes on writing to the deleted copy (recoverable only
# from /proc/<scheduler pid>/fd while it runs). To compare two builds, use a `git worktree`.
set -euo pipefail
cd "$(dirname "$0")/.."
BG=${ABLATE_BG:-.build/background}
PIDFILE=$BG/pid LOG=$BG/run.log AFTER=$BG/after.pid AFTERARGS=$BG/after.args

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
queued() { [[ -f $AFTER ]] && kill -0 "$(cat "$AFTER")" 2>/dev/null; }

case ${1:-} in
start)
    shift
    [[ $# -ge 1 ]] || { echo "usage: $0 start <table[,table…]|all> [ablate run options]" >&2; exit 2; }
    if running; then echo "a sweep is already running (pid $(cat "$PIDFILE")); '$0 stop' first" >&2; exit 1; fi
    make build >/dev/null
    rm -rf "$BG/experiments" && mkdir -p "$BG"
    cp .build/release/ablate "$BG/ablate.new" && mv "$BG/ablate.new" "$BG/ablate"
    cp -r experiments "$BG/experiments"
    nohup "$BG/ablate" run "$@" --experiments "$BG/experiments" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    echo "started: ablate run $* (pid $!); log $LOG; '$0 status' to follow, '$0 stop' to stop"
    ;;
after)
    # One queued sweep: a watcher waits for the running one to end, then starts this one.
    # `stop` cancels it first, so stopping never starts the queued sweep.
    shift
    [[ $# -ge 1 ]] || { echo "usage: $0 after <table[,table…]|all> [ablate run options]" >&2; exit 2; }
    if queued; then
        echo "a sweep is already queued ($(cat "$AFTERARGS")); '$0 stop' cancels it" >&2; exit 1
    fi
    running || exec "$0" start "$@"
    mkdir -p "$BG"
    pid=$(cat "$PIDFILE")
    nohup bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 5; done; rm -f "$2"; shift 2; exec "$@"' \
        _ "$pid" "$AFTER" "$0" start "$@" >"$BG/after.log" 2>&1 &
    echo $! >"$AFTER"
    echo "$*" >"$AFTERARGS"
    echo "queued: ablate run $* starts when pid $pid ends ('$0 stop' cancels it)"
    ;;
status)
    running && echo "running (pid $(cat "$PIDFILE"))" || echo "not running"
    if queued; then echo "queued next: $(cat "$AFTERARGS")"; fi
    [[ -f $LOG ]] || exit 0
    grep -a "^wrote " "$LOG" | sed 's/^/  /' || true
    tr '\r' '\n' <"$LOG" | grep -a "^runs " | tail -1 | sed 's/^/  now: /' || true
    ;;
stop)
    if [[ -f $AFTER ]]; then
        kill "$(cat "$AFTER")" 2>/dev/null && echo "cancelled the queued sweep ($(cat "$AFTERARGS"))" || true
        rm -f "$AFTER"
    fi
    if running; then
        kill -INT "$(cat "$PIDFILE")"
        for _ in $(seq 120); do running || break; sleep 1; done
        running && { echo "the sweep did not stop within 2 minutes (pid $(cat "$PIDFILE"))" >&2; exit 1; }
    fi
    rm -f "$PIDFILE"
    if [[ -f results/ablate.sqlite ]] && command -v sqlite3 >/dev/null; then
        sqlite3 results/ablate.sqlite "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    fi
    echo "stopped; interrupted runs resume with the next '$0 start'"
    ;;
*)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
