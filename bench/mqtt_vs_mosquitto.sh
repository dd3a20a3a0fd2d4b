#!/usr/bin/env bash
# mqtt_vs_mosquitto.sh: runs the same herald-mqtt-bench scenarios against Mosquitto
# and against herald (open mode), and prints a markdown table side by side.
#
# Each scenario gets a fresh broker on a free loopback port, so one broker's crash
# or leftover memory cannot spoil the next number. A broker that does not start,
# refuses MQTT or does not finish a run in time gets "n/a" and a footnote; the
# script itself never hangs (every run is also wrapped in `timeout`).
#
# Usage: bench/mqtt_vs_mosquitto.sh            (build herald and herald-mqtt-bench first)
# Environment:
#   QUICK=1              small sizes for a smoke run (about a minute)
#   BROKERS="mosquitto herald"   which brokers to run: mosquitto, herald (mqtt.event_loops
#                        = 1), herald2 (event_loops = 2), heraldold (the binary in
#                        HERALD_BEFORE, e.g. the build before a change, for a same-run
#                        comparison)
#   SCENARIOS="conn fanout fanin0 fanin1 flood1 latency"   which scenarios to run
#   flood1: FLOOD_CLIENTS (4) publishers flood one subscriber with FLOOD_MESSAGES
#                        (400000) QoS 1 messages in total and no end-to-end window:
#                        every PUBACKed message must arrive (completeness 1.0)
#   FANOUT_CLIENTS (10000) FANOUT_MESSAGES (200000)  fanout, QoS 1, 100-byte payloads
#   FANIN_CLIENTS (100)    FANIN_SECONDS (10)        fanin, QoS 0 and QoS 1, publishing
#                        for FANIN_SECONDS (or FANIN_MESSAGES in total, when set):
#                        a fixed message count is over in a fraction of a second
#                        on a fast broker and many seconds on a slow one
#   FANIN_E2E_WINDOW (5000)  fanin publishers pause while this many messages are
#                        published but not yet received, so a broker's per-client
#                        queue limit (herald: 10000) is not overrun: msgs/s is then
#                        the rate the broker sustains, not how fast it can drop
#   LATENCY_RATE (1000)    LATENCY_DURATION (10)     latency, QoS 1
#   CONN_CLIENTS (10000)   CONN_HOLD (5)             idle connections, broker RSS
#   RUN_TIMEOUT (300)      hard limit in seconds for one benchmark run
#   BUILD_DIR (build)  BENCH  HERALD   paths of the binaries
#   MOSQUITTO (mosquitto on PATH or /usr/sbin/mosquitto)  MOSQUITTO_EXTRA_CONF (lines)
#   RESULTS_DIR          keep the raw JSON lines and broker logs there
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
BENCH=${BENCH:-$BUILD_DIR/herald-mqtt-bench}
HERALD=${HERALD:-$BUILD_DIR/herald}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
BROKERS=${BROKERS:-"mosquitto herald"}
SCENARIOS=${SCENARIOS:-"conn fanout fanin0 fanin1 flood1 latency"}
FLOOD_CLIENTS=${FLOOD_CLIENTS:-4}
HERALD_BEFORE=${HERALD_BEFORE:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
if [[ ${QUICK:-0} == 1 ]]; then
  FANOUT_CLIENTS=${FANOUT_CLIENTS:-1000} FANOUT_MESSAGES=${FANOUT_MESSAGES:-20000}
  FANIN_CLIENTS=${FANIN_CLIENTS:-10} FANIN_SECONDS=${FANIN_SECONDS:-3}
  FLOOD_MESSAGES=${FLOOD_MESSAGES:-40000}
  FANIN_E2E_WINDOW=${FANIN_E2E_WINDOW:-5000}
  LATENCY_RATE=${LATENCY_RATE:-1000} LATENCY_DURATION=${LATENCY_DURATION:-3}
  CONN_CLIENTS=${CONN_CLIENTS:-1000} CONN_HOLD=${CONN_HOLD:-2}
else
  FANOUT_CLIENTS=${FANOUT_CLIENTS:-10000} FANOUT_MESSAGES=${FANOUT_MESSAGES:-200000}
  FANIN_CLIENTS=${FANIN_CLIENTS:-100} FANIN_SECONDS=${FANIN_SECONDS:-10}
  FLOOD_MESSAGES=${FLOOD_MESSAGES:-400000}
  FANIN_E2E_WINDOW=${FANIN_E2E_WINDOW:-5000}
  LATENCY_RATE=${LATENCY_RATE:-1000} LATENCY_DURATION=${LATENCY_DURATION:-10}
  CONN_CLIENTS=${CONN_CLIENTS:-10000} CONN_HOLD=${CONN_HOLD:-5}
fi

if [[ ! -x $BENCH ]]; then
  echo "mqtt_vs_mosquitto: $BENCH not found; build it: ninja -C build herald herald-mqtt-bench" >&2
  exit 2
fi
if ! command -v python3 >/dev/null; then
  echo "mqtt_vs_mosquitto: python3 is needed to read the JSON results" >&2
  exit 2
fi

WORK=$(mktemp -d -t mqtt-vs-mosquitto.XXXXXX)
RESULTS_DIR=${RESULTS_DIR:-$WORK/results}
mkdir -p "$RESULTS_DIR"
BROKER_PID=""
BROKER_PORT=""
NOTES=()

stop_broker() {
  stop_process "$BROKER_PID"
  BROKER_PID=""
}

cleanup() {
  stop_broker
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listening() {  # port, pid: up to 10 s
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# max_queued_messages is far above any run's size: at 100000, Mosquitto 2.0.11 was
# seen to drop the last ~e2e-window messages of a 200000-message QoS 1 fanin (an
# independent mosquitto_sub missed them too), which would be counted against it.
start_mosquitto() {  # tag
  local conf=$WORK/mosquitto-$1.conf log=$RESULTS_DIR/mosquitto-$1.log
  for _ in 1 2 3; do
    BROKER_PORT=$(free_port)
    cat >"$conf" <<EOF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 1000
max_queued_messages 1000000
${MOSQUITTO_EXTRA_CONF:-}
EOF
    "$MOSQUITTO" -c "$conf" >"$log" 2>&1 &
    BROKER_PID=$!
    wait_listening "$BROKER_PORT" "$BROKER_PID" && return 0
    stop_broker
  done
  NOTES+=("mosquitto did not start; see its log: $(tail -n 2 "$log" | tr '\n' ' ')")
  return 1
}

start_herald() {  # tag [binary [event loops]]
  local out=$RESULTS_DIR/herald-$1.out data bin=${2:-$HERALD} loops=${3:-1} conf
  if [[ ! -x $bin ]]; then
    NOTES+=("herald: $bin not found")
    return 1
  fi
  data=$(mktemp -d -p "$WORK" herald-data.XXXXXX)
  local extra=()
  if ((loops > 1)); then
    conf=$WORK/herald-loops-$loops.toml
    printf '[mqtt]\nevent_loops = %d\n' "$loops" >"$conf"
    extra=(--config "$conf")
  fi
  "$bin" serve --mqtt-open --data-dir "$data" --http-listen 127.0.0.1:0 \
    --mqtt-listen 127.0.0.1:0 --ws-listen 127.0.0.1:0 "${extra[@]}" >"$out" 2>"$RESULTS_DIR/herald-$1.err" &
  BROKER_PID=$!
  for _ in $(seq 300); do
    local hp
    hp=$(sed -n 's/^listening .*mqtt=\([^ ]*\).*/\1/p' "$out" | head -n 1)
    if [[ -n $hp ]]; then
      BROKER_PORT=${hp##*:}
      return 0
    fi
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  NOTES+=("herald did not print its listening line: $(tail -n 2 "$RESULTS_DIR/herald-$1.err" | tr '\n' ' ')")
  stop_broker
  return 1
}

start_herald2() { start_herald "$1" "$HERALD" 2; }
start_heraldold() { start_herald "$1" "$HERALD_BEFORE" 1; }

# CPU seconds (user + system) the process PID has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# run_case TAG BROKER BENCH-ARGS...: starts a fresh broker, runs the benchmark, keeps
# its JSON line in $RESULTS_DIR/TAG-BROKER.json ("{}" when it failed).
run_case() {
  local tag=$1 broker=$2 json=$RESULTS_DIR/$1-$2.json
  shift 2
  echo '{}' >"$json"
  "start_$broker" "$tag-$broker" || return
  local args=("$@" --host 127.0.0.1 --port "$BROKER_PORT" --json)
  [[ $tag == conn ]] && args+=(--broker-pid "$BROKER_PID")
  echo "## $broker: herald-mqtt-bench ${args[*]}" >&2
  local out rc cpu0 cpu1
  cpu0=$(cpu_seconds "$BROKER_PID")
  out=$(timeout --kill-after=5 "$RUN_TIMEOUT" "$BENCH" "${args[@]}" 2>&1)
  rc=$?
  cpu1=$(cpu_seconds "$BROKER_PID")
  echo "$out" | grep -v '^{' >&2
  if [[ $rc == 124 || $rc == 137 ]]; then
    NOTES+=("$broker $tag: no result within RUN_TIMEOUT=${RUN_TIMEOUT}s")
  elif [[ $rc != 0 ]]; then
    NOTES+=("$broker $tag: $(echo "$out" | grep -v '^{' | tail -n 1)")
  fi
  if [[ $rc == 0 ]]; then
    # The broker's own CPU time per message delivered: what a load generator that
    # is itself the ceiling cannot hide.
    echo "$out" | grep '^{' | tail -n 1 | python3 -c '
import json, sys
j = json.loads(sys.stdin.read()); cpu = float(sys.argv[2]) - float(sys.argv[1])
j["broker_cpu_s"] = cpu
n = j.get("received") or 0
j["broker_cpu_us_per_msg"] = cpu * 1e6 / n if n else -1
print(json.dumps(j))' "$cpu0" "$cpu1" >"$json"
  fi
  stop_broker
}

ROWS=""
row() {  # TAG LABEL METRIC KEY DIGITS: one table row, rendered by render_table
  ROWS+="$1|$2|$3|$4|$5"$'\n'
}

# Prints the markdown table for $ROWS from the JSON results, then a note for every
# run that lost messages. One python3 process for the lot.
render_table() {
  python3 - "$RESULTS_DIR" "$BROKERS" "$ROWS" <<'EOF'
import json, os, sys
results, brokers = sys.argv[1], sys.argv[2].split()
def load(tag, broker):
    try:
        return json.load(open(os.path.join(results, f"{tag}-{broker}.json")))
    except Exception:
        return {}
def num(tag, broker, key):
    v = load(tag, broker).get(key)
    return None if not isinstance(v, (int, float)) or v < 0 else float(v)
heralds = [b for b in brokers if b != "mosquitto"]
cols = brokers + [f"{h}/mosquitto" for h in heralds if "mosquitto" in brokers]
print("| scenario | metric | " + " | ".join(cols) + " |")
print("| --- | --- | " + " | ".join("---:" for _ in cols) + " |")
tags = []
for line in sys.argv[3].splitlines():
    tag, label, metric, key, digits = line.split("|")
    tags.append(tag)
    fmt = lambda v: "n/a" if v is None else f"{v:.{int(digits)}f}"
    vals = [fmt(num(tag, b, key)) for b in brokers]
    if "mosquitto" in brokers:
        m = num(tag, "mosquitto", key)
        for h in heralds:
            v = num(tag, h, key)
            vals.append("n/a" if m is None or v is None or m == 0 else f"{v / m:.2f}")
    print(f"| {label} | {metric} | " + " | ".join(vals) + " |")
notes = []
for tag in dict.fromkeys(tags):
    for broker in brokers:
        c = num(tag, broker, "completeness")
        if c is not None and c < 1:
            notes.append(f"- {broker} {tag}: completeness {c:.4f}: the broker lost or dropped "
                         "messages; msgs/s counts only those delivered")
if notes:
    print()
    print("\n".join(notes))
EOF
}

wanted() { [[ " $SCENARIOS " == *" $1 "* ]]; }

for broker in $BROKERS; do
  wanted conn && run_case conn "$broker" conn --clients "$CONN_CLIENTS" --duration "$CONN_HOLD"
  wanted fanout && run_case fanout "$broker" fanout --qos 1 --clients "$FANOUT_CLIENTS" \
    --messages "$FANOUT_MESSAGES" --payload 100
  # --messages 0: publish for --duration seconds, then let what is in flight arrive.
  wanted fanin0 && run_case fanin0 "$broker" fanin --qos 0 --clients "$FANIN_CLIENTS" \
    --messages "${FANIN_MESSAGES:-0}" --duration "$FANIN_SECONDS" --payload 100 \
    --e2e-window "$FANIN_E2E_WINDOW"
  wanted fanin1 && run_case fanin1 "$broker" fanin --qos 1 --clients "$FANIN_CLIENTS" \
    --messages "${FANIN_MESSAGES:-0}" --duration "$FANIN_SECONDS" --payload 100 \
    --e2e-window "$FANIN_E2E_WINDOW"
  wanted flood1 && run_case flood1 "$broker" fanin --qos 1 --clients "$FLOOD_CLIENTS" \
    --messages "$FLOOD_MESSAGES" --payload 100 --e2e-window 0
  wanted latency && run_case latency "$broker" latency --qos 1 --rate "$LATENCY_RATE" \
    --duration "$LATENCY_DURATION" --payload 100
done

if wanted fanout; then
  s="fanout $FANOUT_CLIENTS subs QoS1 100B"
  row fanout "$s" "msgs/s" msgs_per_s 0
  row fanout "$s" "broker CPU us/msg" broker_cpu_us_per_msg 2
  row fanout "$s" "completeness" completeness 4
fi
for q in 0 1; do
  if wanted fanin$q; then
    s="fanin $FANIN_CLIENTS pubs QoS$q 100B, ${FANIN_MESSAGES:-${FANIN_SECONDS}s}"
    ((FANIN_E2E_WINDOW > 0)) && s+=" e2e<=$FANIN_E2E_WINDOW"
    row fanin$q "$s" "msgs/s" msgs_per_s 0
    row fanin$q "$s" "broker CPU us/msg" broker_cpu_us_per_msg 2
    row fanin$q "$s" "completeness" completeness 4
  fi
done
if wanted flood1; then
  s="flood $FLOOD_CLIENTS pubs -> 1 sub QoS1, $FLOOD_MESSAGES msgs, no window"
  row flood1 "$s" "msgs/s" msgs_per_s 0
  row flood1 "$s" "broker CPU us/msg" broker_cpu_us_per_msg 2
  row flood1 "$s" "completeness" completeness 4
fi
if wanted latency; then
  s="latency $LATENCY_RATE msg/s QoS1"
  row latency "$s" "p50 us (lower is better)" p50_us 0
  row latency "$s" "p99 us" p99_us 0
  row latency "$s" "p999 us" p999_us 0
fi
if wanted conn; then
  s="conn $CONN_CLIENTS idle"
  row conn "$s" "connections/s" conn_per_s 0
  row conn "$s" "broker bytes/connection (RSS)" bytes_per_conn 0
  row conn "$s" "completeness" completeness 4
fi
echo
render_table
if ((${#NOTES[@]})); then
  echo
  for n in "${NOTES[@]}"; do echo "- $n"; done
fi
