#!/usr/bin/env bash
# The Windows probe's footprint, measured under Wine (docs/BENCHMARKS.md,
# "Windows probe under Wine"): the real rollcall-agent.exe reads an Apex One
# agent planted in a fresh Wine prefix's registry and reports to a real
# coordinator on loopback.
#
#   1. one-shot `rollcall-agent.exe check` (process start, every check,
#      exit): wall time, CPU and peak RSS, median of RUNS runs;
#   2. the daemon (`run`, check_interval 2s) for MEASURE seconds after a
#      warm-up: resident memory and CPU per check cycle, read from
#      /proc/PID of the probe's own process (Wine's wineserver and helper
#      processes are not counted: they exist once per machine under Wine and
#      not at all on Windows).
#
# Usage: bench/windows-probe.sh [path/to/rollcall-agent.exe]
#   (default: builds it with deploy/windows/build.sh)
# Env: RUNS (default 10), WARMUP (20 s), MEASURE (60 s).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-10}
warmup=${WARMUP:-20}
measure=${MEASURE:-60}
exe=${1:-$(bash deploy/windows/build.sh | tail -n1)}
[ -f "$exe" ] || { echo "no $exe" >&2; exit 66; }
command -v wine >/dev/null || { echo "wine is not installed (apt-get install wine64)" >&2; exit 69; }
cargo build -q -p rollcall-server -p rollcall-cli --bins
server=target/debug/rollcall-server
cli=target/debug/rollcall

work=$(mktemp -d)
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
coordinator_pid=""
cleanup() {
    [ -n "$coordinator_pid" ] && kill "$coordinator_pid" 2>/dev/null || true
    wineserver -k 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
winpath() { printf 'Z:%s' "$1" | tr '/' '\\'; }

echo "== a Wine prefix with an Apex One agent planted" >&2
wineboot --init >/dev/null 2>&1
wineserver -p 2>/dev/null || true  # already running after wineboot: fine
agent_key='HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion'
uninstall_key='HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\{8456195C-3BA3-45A4-A6A7-30AE7A62EADB}'
reg() { wine reg add "$1" /v "$2" /t "$3" /d "$4" /f /reg:64 >/dev/null; }
mkdir -p "$work/Security Agent"
printf '[INI_UPDATE_SECTION]\r\nUpdateFrom=0\r\n' > "$work/Security Agent/ofcscan.ini"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg "$uninstall_key" DisplayName REG_SZ "Trend Micro Apex One Security Agent"
reg "$uninstall_key" DisplayVersion REG_SZ 14.0.1
reg "$agent_key" "Application Path" REG_SZ "$(winpath "$work/Security Agent")"
reg "$agent_key" LicenseExpiry REG_SZ 2099-12-31
reg "$agent_key" UpdatePermission REG_DWORD 0
reg "$agent_key" Server REG_SZ 127.0.0.1
reg "$agent_key" ServerPort REG_DWORD "$port"

cat > "$work/apex-one.toml" <<EOF
[install_dir]
registry = { key = '$agent_key', value = "Application Path" }
[version]
uninstall = { display_name = "Trend Micro Apex One Security Agent", match = "exact" }
[license.expires]
registry = { key = '$agent_key', value = "LicenseExpiry" }
[update.permission]
registry = { key = '$agent_key', value = "UpdatePermission" }
translate = { "0" = "all_components", "1" = "pattern_files", "2" = "pattern_engine_driver" }
[update.source]
ini = { file = "ofcscan.ini", section = "INI_UPDATE_SECTION", key = "UpdateFrom" }
translate = { "0" = "standard", "1" = "custom" }
[server.address]
registry = { key = '$agent_key', value = "Server" }
port = { registry = { key = '$agent_key', value = "ServerPort" } }
EOF
cat > "$work/template.toml" <<EOF
check_interval = "2s"
[product]
adapter = "apex-one"
mapping = '$(winpath "$work/apex-one.toml")'
install_path = '$(winpath "$work/Security Agent")'
EOF

echo "== a coordinator on 127.0.0.1:$port, the probe enrolled" >&2
"$server" init --data-dir "$work/coord" >/dev/null
"$server" serve --data-dir "$work/coord" --listen "127.0.0.1:$port" 2>"$work/coord.log" &
coordinator_pid=$!
admin=(--coordinator "https://127.0.0.1:$port" --identity "$work/coord/admin")
for _ in $(seq 100); do "$cli" "${admin[@]}" agents >/dev/null 2>&1 && break; sleep 0.2; done
token=$("$cli" "${admin[@]}" token create | tail -n1)
wine "$exe" enroll --coordinator "https://127.0.0.1:$port" --ca "$(winpath "$work/coord/ca.pem")" \
    --token "$token" --hostname bench-win --data-dir "$(winpath "$work/agent")" \
    --template "$(winpath "$work/template.toml")" >/dev/null
config=$(winpath "$work/agent/agent.toml")

echo "== 1. one-shot check, $runs runs" >&2
# Once with its output kept: the figures count only if the checks ran.
wine "$exe" check --config "$config" --output json > "$work/check.json" || true
checks_run=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for c in d["checks"] if c["status"] != "error"))' "$work/check.json")
: > "$work/check.txt"
for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %U %S %M' -a -o "$work/check.txt" wine "$exe" check --config "$config" >/dev/null || true
done
read -r check_wall check_cpu check_rss < <(sort -n "$work/check.txt" | awk '
    { wall[NR]=$1; cpu[NR]=$2+$3; if ($4>rss) rss=$4 }
    END { m=int((NR+1)/2); printf "%.2f %.2f %d\n", wall[m], cpu[m], rss/1024 }')

# Wine's own floor: the same .exe doing nothing (`--version`).
/usr/bin/time -f '%M' -o "$work/floor.txt" wine "$exe" --version >/dev/null
floor_mib=$(( $(tail -n1 "$work/floor.txt") / 1024 ))

echo "== 2. the daemon: ${warmup}s warm-up, ${measure}s measured" >&2
wine "$exe" run --config "$config" 2>"$work/agent.log" &
for _ in $(seq 100); do
    pid=$(pgrep -f 'rollcall-agent.exe run' | head -n1 || true)
    [ -n "$pid" ] && break
    sleep 0.2
done
sleep "$warmup"
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
start_ticks=$(cpu_ticks)
sleep "$measure"
end_ticks=$(cpu_ticks)
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
cycles=$((measure / 2))
cpu_ms_per_cycle=$(( (end_ticks - start_ticks) * 1000 / ticks / cycles ))
online=$("$cli" "${admin[@]}" --output json agents | python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin) if a.get("online")))')

cat <<EOF
| Windows probe under Wine ($(wine --version), $(nproc) cores) | value |
|---|---|
| one-shot \`check\`: checks evaluated (not \`error\`) | ${checks_run} of 7 |
| one-shot \`check\`: wall time (median of $runs) | ${check_wall} s |
| one-shot \`check\`: CPU, user + system (median) | ${check_cpu} s |
| one-shot \`check\`: peak RSS | ${check_rss} MiB |
| Wine's floor: \`rollcall-agent.exe --version\`, peak RSS | ${floor_mib} MiB |
| daemon: RSS after ${warmup}s + ${measure}s (peak) | $((rss_kib / 1024)) MiB ($((hwm_kib / 1024)) MiB) |
| daemon: CPU per check cycle (${cycles} cycles at 2 s) | ${cpu_ms_per_cycle} ms |
| daemon: online at the coordinator | ${online} of 1 |
EOF
