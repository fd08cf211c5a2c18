#!/usr/bin/env bash
# rollcall benchmark suite: starts a release coordinator (or several replicas
# on PostgreSQL) and the fleet simulator on loopback, measures every goal of
# docs/BENCHMARKS.md, and writes the figures between the bench markers of
# docs/BENCHMARKS.md (and a copy under bench/results/).
#
#   bench/run.sh --agents 1000                 # about a minute, anyone can run it
#   bench/run.sh --agents 19000                # one coordinator at the file limit
#   bench/run.sh --agents 100000 --replicas 5 --database-url postgres://…/rollcall
#
# Everything runs on 127.0.0.0/8, stops by itself, and cleans up its processes.
# Options:
#   --agents N          connected agents (default 1000)
#                       (the recheck targets all of them, or the 10,000 labelled block=0
#                       when there are more; the storm restarts under all of them)
#   --burst-agents N    streams of the ingest burst (default 500)
#   --burst-reports N   reports per burst stream (default 150; the per-agent burst allowance is 200)
#   --replicas K        coordinator processes (K > 1 needs --database-url)
#   --database-url URL  PostgreSQL store shared by the replicas
#   --private-postgres  start a private PostgreSQL cluster (initdb) in the work dir for
#                       this run (max_connections 400; durable defaults: fsync and
#                       synchronous_commit on) and use it as --database-url
#   --skip-build        use the release binaries as they are
#   --skip PHASES       comma list of phases to skip: connect,recheck,storm,ingest,probe
#   --dir DIR           work directory (default /tmp/rollcall-bench); wiped at start if
#                       it is one the bench made (it holds a .rollcall-bench marker)
#   --out FILE          markdown file to update (default docs/BENCHMARKS.md)
set -euo pipefail

AGENTS=1000
RECHECK_AGENTS=""
BURST_AGENTS=500
BURST_REPORTS=150
REPLICAS=1
DATABASE_URL=""
SKIP_BUILD=0
PRIVATE_PG=0
SKIP=""
WORK=/tmp/rollcall-bench
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/docs/BENCHMARKS.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --agents) AGENTS=$2; shift 2 ;;
        --burst-agents) BURST_AGENTS=$2; shift 2 ;;
        --burst-reports) BURST_REPORTS=$2; shift 2 ;;
        --replicas) REPLICAS=$2; shift 2 ;;
        --database-url) DATABASE_URL=$2; shift 2 ;;
        --private-postgres) PRIVATE_PG=1; shift ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --skip) SKIP=$2; shift 2 ;;
        --dir) WORK=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
RECHECK_AGENTS=$(( AGENTS < 10000 ? AGENTS : 10000 ))
if [ "$REPLICAS" -gt 1 ] && [ -z "$DATABASE_URL" ] && [ "$PRIVATE_PG" = 0 ]; then
    echo "--replicas > 1 needs --database-url (replicas share one PostgreSQL store)" >&2
    exit 2
fi
# Small runs measure over shorter windows so the whole suite takes about a minute.
if [ "$AGENTS" -le 2000 ]; then
    SETTLE=3; GAP=1; PROBE_WARM=3; PROBE_BUSY_S=8; PROBE_IDLE_S=12
else
    SETTLE=10; GAP=3; PROBE_WARM=5; PROBE_BUSY_S=30; PROBE_IDLE_S=60
fi
skipped() { case ",$SKIP," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# Timings. Up to one simulator's worth of agents: heartbeats every 30s and
# checks every 60s (the storm counts their reports). Beyond that (several
# simulators and replicas sharing the two cores), the intervals a fleet that
# size would use, so keepalives are not starved into reconnect loops.
# The simulator sends a whole fleet from a few loopback addresses; a real
# fleet comes from many, so the per-source limits are raised (docs/SECURITY.md).
EDGE_LIMITS=(--max-unauthenticated-per-source 100000 --enroll-rate-per-source 10000000 --enroll-burst-per-source 100000)
FLEET_TIMING=(--heartbeat-interval 30s)
SIM_TIMING=()
CHECK_INTERVAL=60s
LARGE_FLEET=19000
if [ "$AGENTS" -gt "$LARGE_FLEET" ]; then
    FLEET_TIMING=(--heartbeat-interval 2m --keepalive-interval 2m --keepalive-timeout 60s)
    SIM_TIMING=(--keepalive 2m --keepalive-timeout 60s --connect-timeout 60s)
    CHECK_INTERVAL=15m
fi

# The documented way: take the hard open-file limit (each agent is a socket).
ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
# One simulator process holds this many agents at most (its own fd limit).
PER_SIM=$(( FD_LIMIT - 1000 ))

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

if [ "$SKIP_BUILD" = 0 ]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release -p rollcall-server -p rollcall-cli -p rollcall-agent >&2)
fi
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# One run per work dir at a time: a second run would wipe the first one's
# dir, and its exit would stop the first one's processes and database.
exec 9>"$WORK.lock"
if ! flock -n 9; then
    echo "another bench run is using $WORK (lock $WORK.lock); wait for it or choose --dir" >&2
    exit 2
fi
if [ -e "$WORK" ]; then
    if [ ! -e "$WORK/.rollcall-bench" ]; then
        echo "$WORK exists and is not a bench work dir; choose another --dir" >&2
        exit 2
    fi
    rm -rf "$WORK"
fi
mkdir -p "$WORK/bin"
touch "$WORK/.rollcall-bench"
# A private copy: the shared target dir may be rebuilt while the bench runs.
for name in rollcall-server rollcall rollcall-agent rollcall-sim; do
    cp "$TARGET_DIR/release/$name" "$WORK/bin/"
done
BIN="$WORK/bin"
SERVER="$BIN/rollcall-server"
CLI="$BIN/rollcall"
AGENT="$BIN/rollcall-agent"
SIM="$BIN/rollcall-sim"
DATA="$WORK/coordinator"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

if [ "$PRIVATE_PG" = 1 ]; then
    # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$PG_BIN/initdb" ] || { echo "--private-postgres needs PostgreSQL's initdb" >&2; exit 2; }
    PG_DIR="$WORK/pg"
    PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$PG_DIR"
    as_pg=()
    if [ "$(id -u)" = 0 ]; then chown postgres "$PG_DIR"; as_pg=(runuser -u postgres --); fi
    "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >"$WORK/pg-initdb.log" 2>&1
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR -c max_connections=400 -c shared_buffers=1GB" \
        start >/dev/null
    stop_pg() { "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true; }
    trap 'cleanup; stop_pg' EXIT
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atq -c "CREATE DATABASE rollcall" postgres
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/rollcall"
    log "private PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($2 - $1, 3))"; }

"$SERVER" init --data-dir "$DATA" >/dev/null
export ROLLCALL_IDENTITY="$DATA/admin"

PORTS=()
SERVER_PIDS=()
URLS=()
for i in $(seq 0 $(( REPLICAS - 1 ))); do PORTS+=("$(free_port)"); done
start_coordinators() {
    SERVER_PIDS=()
    for i in $(seq 0 $(( REPLICAS - 1 ))); do
        local args=(serve --data-dir "$DATA" --listen "127.0.0.1:${PORTS[$i]}" "${FLEET_TIMING[@]}" "${EDGE_LIMITS[@]}")
        if [ -n "$DATABASE_URL" ]; then
            args+=(--database-url "$DATABASE_URL" --replica-id "bench-$i")
        fi
        "$SERVER" "${args[@]}" >>"$WORK/server-$i.log" 2>&1 &
        SERVER_PIDS+=("$!")
        PIDS+=("$!")
    done
    for port in "${PORTS[@]}"; do
        for _ in $(seq 1 100); do
            # A cheap admin call (listing agents grows with the fleet).
            if "$CLI" --coordinator "https://127.0.0.1:$port" token list >/dev/null 2>&1; then break; fi
            sleep 0.1
        done
    done
}
URLS=()
for port in "${PORTS[@]}"; do URLS+=("https://127.0.0.1:$port"); done
export ROLLCALL_COORDINATOR="${URLS[0]}"
SIM_URLS=()
for url in "${URLS[@]}"; do SIM_URLS+=(--coordinator "$url"); done

sql() {
    if [ -n "$DATABASE_URL" ]; then
        psql "$DATABASE_URL" -Atq -c "$1"
    else
        sqlite3 -cmd ".timeout 5000" "$DATA/rollcall.db" "$1"
    fi
}
connected() { sql "SELECT count(*) FROM agents WHERE connected = true"; }  # 1 in SQLite, boolean in PostgreSQL
stored_reports() { sql "SELECT count(*) FROM reports"; }
online_by_cli() {
    { "$CLI" agents --output json 2>/dev/null || true; } | python3 -c 'import json,sys
try:
    data = json.load(sys.stdin)
except Exception:
    print(0); sys.exit()
agents = data if isinstance(data, list) else data.get("agents", [])
print(sum(1 for a in agents if a.get("online")))'
}
sum_rss() { local total=0; for pid in "$@"; do total=$(( total + $(rss_kib "$pid") )); done; echo "$total"; }

start_coordinators
sleep 2
BASE_RSS=$(sum_rss "${SERVER_PIDS[@]}")
log "coordinator(s) up: ${URLS[*]}; baseline RSS ${BASE_RSS} KiB; open-file limit $FD_LIMIT"
# A token may be used at most 100,000 times: one for the fleet, one for the burst.
TOKEN=$("$CLI" token create --uses "$AGENTS" --ttl 4h | tail -n 1)
BURST_TOKEN=$("$CLI" token create --uses $(( BURST_AGENTS + 10 )) --ttl 4h | tail -n 1)

# ---------------------------------------------------------------- enrollment
log "enrolling $AGENTS simulated agents (cached in $WORK/sim)"
t0=$(now)
"$SIM" enroll "${SIM_URLS[@]}" --ca "$DATA/ca.pem" --token "$TOKEN" --sim-dir "$WORK/sim" \
    --agents "$AGENTS" --enroll-concurrency 32 >/dev/null 2>>"$WORK/sim-enroll.log"
ENROLL_S=$(elapsed "$t0" "$(now)")
ENROLL_RATE=$(python3 -c "print(round($AGENTS / $ENROLL_S))")
log "enrolled in ${ENROLL_S}s (${ENROLL_RATE}/s)"

# ---------------------------------------------------------------- connect
SIM_PIDS=()
start_fleet() {
    # $1: check interval
    SIM_PIDS=()
    local first=0 n=0 k=0
    # The simulators share one connection rate (~1,000 handshakes/s is what
    # the two cores take): six simulators at 1,000/s each ran into handshake
    # timeouts and reconnected in a loop.
    local sims=$(( (AGENTS + PER_SIM - 1) / PER_SIM ))
    local rate=$(( 1000 / sims ))
    while [ "$first" -lt "$AGENTS" ]; do
        n=$(( AGENTS - first < PER_SIM ? AGENTS - first : PER_SIM ))
        "$SIM" run "${SIM_URLS[@]}" --ca "$DATA/ca.pem" --sim-dir "$WORK/sim" \
            --agents "$n" --first-index "$first" --source-ip "127.0.$(( k + 1 )).2" \
            --check-interval "$1" --connect-rate "$rate" --reconnect-initial 1s --reconnect-max 10s "${SIM_TIMING[@]}" \
            --status-file "$WORK/sim-$k.json" >>"$WORK/sim-$k.log" 2>&1 &
        SIM_PIDS+=("$!")
        PIDS+=("$!")
        first=$(( first + n )); k=$(( k + 1 ))
    done
}
check_runs() {
    python3 - "$WORK" <<'EOF'
import glob, json, sys
total = 0
for path in glob.glob(sys.argv[1] + "/sim-*.json"):
    try:
        total += json.load(open(path))["check_runs"]
    except Exception:
        pass
print(total)
EOF
}
wait_connected() {
    # $1: count, $2: timeout seconds; prints seconds taken (or "timeout")
    local start end
    start=$(now)
    while true; do
        if [ "$(connected)" -ge "$1" ]; then elapsed "$start" "$(now)"; return; fi
        if python3 -c "import sys; sys.exit(0 if $(now) - $start > $2 else 1)"; then echo timeout; return; fi
        sleep 0.5
    done
}

CONNECT_S="-"; RSS_PER_AGENT="-"; LOADED_RSS="-"; SIM_RSS_PER_AGENT="-"
if ! skipped connect; then
    log "connecting $AGENTS agents"
    start_fleet "$CHECK_INTERVAL"
    CONNECT_S=$(wait_connected "$AGENTS" 900)
    log "all connected after ${CONNECT_S}s; settling"
    sleep "$SETTLE"
    LOADED_RSS=$(sum_rss "${SERVER_PIDS[@]}")
    RSS_PER_AGENT=$(python3 -c "print(round(($LOADED_RSS - $BASE_RSS) / $AGENTS, 1))")
    SIM_RSS=$(sum_rss "${SIM_PIDS[@]}")
    SIM_RSS_PER_AGENT=$(python3 -c "print(round($SIM_RSS / $AGENTS, 1))")
    log "coordinator RSS $LOADED_RSS KiB → $RSS_PER_AGENT KiB per agent; simulator $SIM_RSS_PER_AGENT KiB per agent"
fi

# ---------------------------------------------------------------- recheck
RECHECK_RESULTS=""
RECHECK_BEST="-"
if ! skipped recheck && ! skipped connect; then
    selector=all
    log "recheck round trip: rollcall recheck $selector ($RECHECK_AGENTS of $AGENTS agents targeted)"
    if [ "$RECHECK_AGENTS" -lt "$AGENTS" ]; then
        # A stable subset: the simulator labels agents block=<index / 10000>.
        selector="block=0"
    fi
    for run in 1 2 3; do
        start=$(now)
        out=$("$CLI" recheck "$selector" --wait 60s --output json 2>>"$WORK/recheck.log" || true)
        took=$(elapsed "$start" "$(now)")
        answered=$(echo "$out" | python3 -c 'import json,sys
try: d=json.load(sys.stdin); print(d["answered"], d["targeted"])
except Exception: print("0 0")')
        RECHECK_RESULTS+="${took}s (${answered/ / of }) "
        log "recheck $run: ${took}s, answered/targeted $answered"
        sleep "$GAP"
    done
    RECHECK_BEST=$(echo "$RECHECK_RESULTS" | tr ' ' '\n' | grep -o '^[0-9.]*' | sort -n | head -1)
fi

# ---------------------------------------------------------------- storm
STORM_S="-"; STORM_PRODUCED="-"; STORM_STORED="-"; STORM_DROPPED="-"; STORM_ONLINE="-"
if ! skipped storm && ! skipped connect; then
    log "reconnect storm: SIGKILL the coordinator(s) with $AGENTS agents connected, restart, time until all online"
    for pid in "${SERVER_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    # Agents keep checking (every 60s) and spool while the coordinator is away.
    sleep 3
    start=$(now)
    start_coordinators
    while true; do
        # `rollcall agents` cannot list more than ~3,800 agents (its reply
        # exceeds the 1 MiB message limit), so count the agents whose hello
        # the restarted coordinator committed, and ask the CLI when it can.
        if [ "$AGENTS" -le 3000 ]; then STORM_ONLINE=$(online_by_cli); else STORM_ONLINE=$(connected); fi
        if [ "$STORM_ONLINE" -ge "$AGENTS" ]; then break; fi
        if python3 -c "import sys; sys.exit(0 if $(now) - $start > 300 else 1)"; then break; fi
        sleep 0.5
    done
    STORM_S=$(elapsed "$start" "$(now)")
    log "$STORM_ONLINE of $AGENTS online ${STORM_S}s after the restart began"
    # No report lost: everything the agents produced up to now gets stored.
    produced=$(check_runs)
    for _ in $(seq 1 60); do
        sleep 1
        stored=$(stored_reports)
        [ "$stored" -ge "$produced" ] && break
    done
    STORM_PRODUCED=$produced
    STORM_STORED=$stored
    STORM_DROPPED=$(sql "SELECT coalesce(sum(dropped_reports), 0) FROM agents")
    log "reports produced by the agents $produced, stored $stored, dropped by spools $STORM_DROPPED"
fi
for pid in "${SIM_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
for pid in "${SIM_PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done

# ---------------------------------------------------------------- ingest
INGEST_JSON="{}"
INGEST_RATE="-"
if ! skipped ingest; then
    sleep "$GAP"
    log "ingest burst: $BURST_AGENTS streams × $BURST_REPORTS reports × 7 check results"
    before=$(stored_reports)
    # Its own agents (enrolled here, after the recheck, so `recheck all` targets only the fleet).
    INGEST_JSON=$("$SIM" burst "${SIM_URLS[@]}" --ca "$DATA/ca.pem" --token "$BURST_TOKEN" --sim-dir "$WORK/sim" \
        --agents "$BURST_AGENTS" --first-index "$AGENTS" --source-ip 127.0.100.2 \
        --reports "$BURST_REPORTS" 2>>"$WORK/sim-burst.log" | tail -n 1)
    after=$(stored_reports)
    INGEST_RATE=$(echo "$INGEST_JSON" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["check_results_per_sec"]))')
    log "ingest: $INGEST_RATE check results/s durably stored (acknowledged); rows stored $(( after - before ))"
fi

# ---------------------------------------------------------------- probe
PROBE_RSS="-"; PROBE_HWM="-"; PROBE_CYCLE_MS="-"; PROBE_IDLE="-"
if ! skipped probe; then
    log "probe: the real rollcall-agent on a fake host root"
    PDIR="$WORK/probe"
    mkdir -p "$PDIR/root/etc/ssl/certs" "$PDIR/root/proc"
    printf 'ID=debian\nVERSION_ID="12"\n' >"$PDIR/root/etc/os-release"
    printf 'MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n' >"$PDIR/root/proc/meminfo"
    cp /etc/ssl/certs/*.pem "$PDIR/root/etc/ssl/certs/" 2>/dev/null || true
    cat >"$PDIR/state.toml" <<EOF
version = "14.0.12737"
role = "endpoint"
[license]
expires = "2099-03-31"
[update]
permission = "all_components"
source = "standard"
[server]
address = "127.0.0.1:${PORTS[0]}"
EOF
    ptoken=$("$CLI" token create --uses 1 --ttl 1h | tail -n 1)
    "$AGENT" enroll --coordinator "${URLS[0]}" --ca "$DATA/ca.pem" --token "$ptoken" \
        --data-dir "$PDIR/agent" --hostname bench-probe >/dev/null
    probe_config() {
        # $1: check interval
        python3 - "$PDIR" "$1" <<'EOF'
import re, sys
pdir, interval = sys.argv[1], sys.argv[2]
text = open(pdir + "/agent/agent.toml").read()
text = re.sub(r'(?m)^check_interval = .*\n', '', text)
text = re.sub(r'(?m)^host_root = .*\n', '', text)
head = 'host_root = "%s/root"\ncheck_interval = "%s"\n' % (pdir, interval)
text = text.replace("[product]", '[product]\nstate_file = "%s/state.toml"' % pdir, 1) if "[product]" in text else text + '\n[product]\nstate_file = "%s/state.toml"\n' % pdir
open(pdir + "/agent-%s.toml" % interval, "w").write(head + text)
EOF
    }
    probe_config 1s
    probe_config 1h
    # Busy: a full check cycle every second; CPU per cycle over PROBE_BUSY_S cycles.
    "$AGENT" run --config "$PDIR/agent-1s.toml" >>"$WORK/probe-busy.log" 2>&1 &
    ppid=$!; PIDS+=("$ppid")
    sleep "$PROBE_WARM"
    c0=$(cpu_ticks "$ppid"); t0=$(now)
    sleep "$PROBE_BUSY_S"
    c1=$(cpu_ticks "$ppid"); t1=$(now)
    PROBE_RSS=$(rss_kib "$ppid"); PROBE_HWM=$(hwm_kib "$ppid")
    cycles=$(python3 -c "print(int($t1 - $t0))")
    PROBE_CYCLE_MS=$(python3 -c "import os; print(round(($c1 - $c0) * 1000 / os.sysconf('SC_CLK_TCK') / $cycles, 1))")
    kill "$ppid"; wait "$ppid" 2>/dev/null || true
    # Idle: one check at start, then nothing but heartbeats for PROBE_IDLE_S seconds.
    "$AGENT" run --config "$PDIR/agent-1h.toml" >>"$WORK/probe-idle.log" 2>&1 &
    ppid=$!; PIDS+=("$ppid")
    sleep "$PROBE_WARM"
    c0=$(cpu_ticks "$ppid"); t0=$(now)
    sleep "$PROBE_IDLE_S"
    c1=$(cpu_ticks "$ppid"); t1=$(now)
    PROBE_IDLE=$(python3 -c "import os; print(round(($c1 - $c0) * 1000 / os.sysconf('SC_CLK_TCK') / ($t1 - $t0) , 3))")
    idle_rss=$(rss_kib "$ppid")
    kill "$ppid"; wait "$ppid" 2>/dev/null || true
    log "probe: RSS ${PROBE_RSS} KiB (peak ${PROBE_HWM} KiB, idle ${idle_rss} KiB), ${PROBE_CYCLE_MS} ms CPU per cycle, idle ${PROBE_IDLE} ms CPU per second"
fi

# ---------------------------------------------------------------- report
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$ROOT" && git status --porcelain 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
MEM=$(free -g | awk '/^Mem:/ {print $2}')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
STORE=$([ -n "$DATABASE_URL" ] && echo "PostgreSQL ($REPLICAS replicas)" || echo "SQLite (WAL, synchronous=FULL)")
ok() { case "$1" in *"-1 >= 0"*) echo "skipped" ;; *) python3 -c "import sys; sys.exit(0 if $1 else 1)" 2>/dev/null && echo "met" || echo "**not met**" ;; esac; }
num() { [[ "$1" =~ ^[0-9.]+$ ]] && echo "$1" || echo "-1"; }
TABLE=$(cat <<EOF
Run of \`bench/run.sh --agents $AGENTS$([ "$REPLICAS" -gt 1 ] && echo " --replicas $REPLICAS --database-url …")\` on $(date -u +%Y-%m-%dT%H:%MZ), commit \`$COMMIT\`$DIRTY.
Machine: $(nproc) cores ($CPU), ${MEM} GiB RAM; load average at the end $LOAD; open-file limit $FD_LIMIT; store $STORE.

| goal | target | measured | |
|---|---|---|---|
| connected agents | all $AGENTS over mTLS | $([ "$CONNECT_S" = "-" ] && echo "-" || echo "$AGENTS connected in ${CONNECT_S}s") | $([ "$CONNECT_S" != "timeout" ] && [ "$CONNECT_S" != "-" ] && echo met || echo "**not met**") |
| coordinator memory per agent | ≤ 64 KiB | $RSS_PER_AGENT KiB (RSS $BASE_RSS → $LOADED_RSS KiB) | $(ok "$(num "$RSS_PER_AGENT") >= 0 and $(num "$RSS_PER_AGENT") <= 64") |
| recheck round trip, $RECHECK_AGENTS agents | ≤ 1 s for 10,000 | best $RECHECK_BEST s; runs: $RECHECK_RESULTS | $(ok "$(num "$RECHECK_BEST") >= 0 and $(num "$RECHECK_BEST") <= 1.0") |
| ingest, check results durably stored | ≥ 50,000/s | $INGEST_RATE/s ($BURST_AGENTS streams × $BURST_REPORTS reports × 7) | $(ok "$(num "$INGEST_RATE") >= 50000") |
| reconnect storm, $AGENTS agents | back within 30 s, no report lost | $STORM_ONLINE online after $STORM_S s; reports produced $STORM_PRODUCED, stored $STORM_STORED, spool drops $STORM_DROPPED | $(ok "$(num "$STORM_S") >= 0 and $(num "$STORM_S") <= 30 and $(num "$STORM_STORED") >= $(num "$STORM_PRODUCED") and $(num "$STORM_DROPPED") == 0") |
| probe resident memory | ≤ 16 MiB | $PROBE_RSS KiB (peak $PROBE_HWM KiB) | $(ok "$(num "$PROBE_HWM") >= 0 and $(num "$PROBE_HWM") <= 16384") |
| probe CPU per full check cycle | ≤ 50 ms | $PROBE_CYCLE_MS ms | $(ok "$(num "$PROBE_CYCLE_MS") >= 0 and $(num "$PROBE_CYCLE_MS") <= 50") |
| probe idle CPU | negligible | $PROBE_IDLE ms CPU per second | $(ok "$(num "$PROBE_IDLE") >= 0 and $(num "$PROBE_IDLE") <= 1") |

Also measured: enrollment ${ENROLL_RATE}/s through the Enroll RPC (32 in flight); simulator memory $SIM_RSS_PER_AGENT KiB per agent; ingest detail \`$INGEST_JSON\`.
EOF
)
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/$(date -u +%Y%m%dT%H%M)-$AGENTS-agents.md"
echo "$TABLE" >"$RESULT"
echo "$TABLE"
python3 - "$OUT" "$RESULT" "$AGENTS" "$REPLICAS" "$([ -n "$DATABASE_URL" ] && echo postgresql || echo sqlite)" <<'EOF'
import os, re, sys
out, result, agents, replicas, store = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
table = open(result).read().strip()
key = "agents-%s-replicas-%s" % (agents, replicas) + ("-postgresql" if store == "postgresql" else "")
begin, end = "<!-- bench:%s:begin -->" % key, "<!-- bench:%s:end -->" % key
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n\n<!-- bench:results -->\n"
block = "%s\n%s\n%s" % (begin, table, end)
if begin in text:
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
elif "<!-- bench:results -->" in text:
    text = text.replace("<!-- bench:results -->", "<!-- bench:results -->\n\n" + block, 1)
else:
    text += "\n" + block + "\n"
open(out, "w").write(text)
EOF
log "figures written to $OUT (block $AGENTS agents, $REPLICAS replicas) and $RESULT"
