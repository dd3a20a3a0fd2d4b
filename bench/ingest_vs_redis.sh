#!/usr/bin/env bash
# ingest_vs_redis.sh: runs `herald bench ingest` and Redis Streams XADD (redis-benchmark,
# pipelined) on the same machine in the same run, and prints a markdown table with the
# issue's targets: in-process >= 1,000,000 events/s; HTTP >= 400,000 events/s and no
# slower than Redis XADD pipelined; event->feature p99 < 100 ms at half of the max
# HTTP load.
#
# What is measured:
#   herald in-process  pre-built events handed to the pipeline (two producer threads)
#                      until the last one is applied to the per-user features; every
#                      event is written to the durable event log first.
#   herald HTTP        NDJSON batches of 1,000 events POSTed to /v1/events over
#                      keep-alive loopback connections from HTTP_CLIENTS client threads
#                      inside the same process (so on the same cores); an event counts
#                      once its response says it was accepted, i.e. written to the log.
#   herald latency     event->feature latency while HTTP load runs at half of the
#                      measured max; p50/p99 are histogram bucket upper bounds.
#   Redis XADD         redis-benchmark -P REDIS_PIPELINE -c N against a fresh
#                      redis-server per run; an XADD counts once redis-server replied.
#                      The stream's XLEN is checked afterwards.
#
# Durability is comparable on both sides: herald acknowledges an event after write(2)
# to its log (it survives kill -9 of the process, not a power loss); redis-server runs
# with `--appendonly yes --appendfsync no --save ''`, i.e. every XADD is written to the
# AOF before the reply goes out and fsync is left to the kernel (same guarantee), with
# no RDB snapshots. Redis' default AOF rewrite (at 64 MB and every doubling) stays on,
# as it would in production.
#
# With ROUNDS > 1 the runs alternate (Redis, then herald, per round) and every number
# in the table is the median over the rounds, so a burst of other load on the machine
# does not decide the result.
#
# Usage: bench/ingest_vs_redis.sh          (build herald first: ninja -C build herald)
# Environment:
#   QUICK=1                 small sizes for a smoke run (well under a minute)
#   ROUNDS (3; QUICK: 1)    rounds; the table shows medians
#   INGEST_EVENTS (2000000; QUICK: 200000)   in-process events, herald --events
#   INGEST_USERS (100000)   distinct users, herald --users; also redis-benchmark -r
#   HTTP_SECONDS (5; QUICK: 2)  LATENCY_SECONDS (5; QUICK: 2)  HTTP_CLIENTS (2)
#   REDIS_REQUESTS (2000000; QUICK: 200000)  XADDs per redis-benchmark run
#   REDIS_PIPELINE (1000)   redis-benchmark -P
#   REDIS_CLIENTS ("2 4")   one redis-benchmark run per value of -c; the Redis
#                           column is the faster of them
#   RUN_TIMEOUT (300)       hard limit in seconds for one benchmark run
#   BUILD_DIR (build)  HERALD (BUILD_DIR/herald)
#   REDIS_SERVER (/usr/bin/redis-server)  REDIS_BENCHMARK (/usr/bin/redis-benchmark)
#   REDIS_CLI (/usr/bin/redis-cli)
#   RESULTS_DIR             keep the raw results and logs there
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
HERALD=${HERALD:-$BUILD_DIR/herald}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-$(command -v redis-benchmark || echo /usr/bin/redis-benchmark)}
REDIS_CLI=${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
INGEST_USERS=${INGEST_USERS:-100000}
HTTP_CLIENTS=${HTTP_CLIENTS:-2}
REDIS_PIPELINE=${REDIS_PIPELINE:-1000}
REDIS_CLIENTS=${REDIS_CLIENTS:-"2 4"}
if [[ ${QUICK:-0} == 1 ]]; then
  ROUNDS=${ROUNDS:-1}
  INGEST_EVENTS=${INGEST_EVENTS:-200000}
  HTTP_SECONDS=${HTTP_SECONDS:-2} LATENCY_SECONDS=${LATENCY_SECONDS:-2}
  REDIS_REQUESTS=${REDIS_REQUESTS:-200000}
else
  ROUNDS=${ROUNDS:-3}
  INGEST_EVENTS=${INGEST_EVENTS:-2000000}
  HTTP_SECONDS=${HTTP_SECONDS:-5} LATENCY_SECONDS=${LATENCY_SECONDS:-5}
  REDIS_REQUESTS=${REDIS_REQUESTS:-2000000}
fi

die() { echo "ingest_vs_redis: $*" >&2; exit 2; }
[[ -x $HERALD ]] || die "$HERALD not found; build it: ninja -C build herald"
command -v python3 >/dev/null || die "python3 is needed to read the results"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"
HAVE_REDIS=1
for b in "$REDIS_SERVER" "$REDIS_BENCHMARK" "$REDIS_CLI"; do
  [[ -x $b ]] || { echo "ingest_vs_redis: $b not found; Redis columns will be n/a" >&2; HAVE_REDIS=0; }
done

WORK=$(mktemp -d -t ingest-vs-redis.XXXXXX)
RESULTS_DIR=${RESULTS_DIR:-$WORK/results}
mkdir -p "$RESULTS_DIR"
REDIS_PID=""
REDIS_PORT=""
NOTES=()

stop_redis() {
  stop_process "$REDIS_PID"
  REDIS_PID=""
}

cleanup() {
  stop_redis
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rcli() { timeout 10 "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" "$@" 2>/dev/null; }

start_redis() {  # tag: a fresh redis-server with an empty data directory
  local dir log=$RESULTS_DIR/redis-$1.log
  for _ in 1 2 3; do
    dir=$(mktemp -d -p "$WORK" redis-data.XXXXXX)
    REDIS_PORT=$(free_port)
    "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode no \
      --dir "$dir" --appendonly yes --appendfsync no --save '' \
      --daemonize no --logfile "$log" &
    REDIS_PID=$!
    for _ in $(seq 100); do
      [[ $(rcli PING) == PONG ]] && return 0
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_redis
    rm -rf "$dir"
  done
  NOTES+=("redis-server did not start; see its log: $(tail -n 2 "$log" | tr '\n' ' ')")
  return 1
}

# run_redis TAG CLIENTS: one pipelined XADD run against a fresh redis-server; writes
# the XADDs/s to $RESULTS_DIR/TAG.redis ("" when it failed).
run_redis() {
  local tag=$1 clients=$2 out=$RESULTS_DIR/$1.redis rc csv rps xlen
  : >"$out"
  ((HAVE_REDIS)) || return
  start_redis "$tag" || return
  # The fields of a herald NDJSON event: user id, type, timestamp. __rand_int__ is
  # replaced by a random 12-digit number below -r in every request.
  local args=(-h 127.0.0.1 -p "$REDIS_PORT" -n "$REDIS_REQUESTS" -P "$REDIS_PIPELINE"
              -c "$clients" -r "$INGEST_USERS" --csv
              XADD herald.events '*' user_id u__rand_int__ type app_open ts 1767571200)
  echo "## redis-benchmark ${args[*]}" >&2
  csv=$(timeout --kill-after=5 "$RUN_TIMEOUT" "$REDIS_BENCHMARK" "${args[@]}" 2>"$RESULTS_DIR/$tag.redis.err")
  rc=$?
  echo "$csv" >"$RESULTS_DIR/$tag.redis.csv"
  rps=$(echo "$csv" | tail -n 1 | cut -d, -f2 | tr -d '"')
  xlen=$(rcli XLEN herald.events)
  if [[ $rc == 124 || $rc == 137 ]]; then
    NOTES+=("redis $tag: no result within RUN_TIMEOUT=${RUN_TIMEOUT}s")
  elif [[ $rc != 0 || ! $rps =~ ^[0-9.]+$ ]]; then
    NOTES+=("redis $tag: redis-benchmark failed: $(tail -n 1 "$RESULTS_DIR/$tag.redis.err")")
  elif [[ $xlen != "$REDIS_REQUESTS" ]]; then
    NOTES+=("redis $tag: XLEN is ${xlen:-unknown} after $REDIS_REQUESTS XADDs; result dropped")
  else
    echo "$rps" >"$out"
    echo "   $rps XADD/s (XLEN $xlen)" >&2
  fi
  stop_redis
  rm -rf "$WORK"/redis-data.*
}

# run_herald TAG: one `herald bench ingest --json`; its JSON line in $RESULTS_DIR/TAG.json.
run_herald() {
  local tag=$1 json=$RESULTS_DIR/$1.json out rc
  echo '{}' >"$json"
  local args=(bench ingest --events "$INGEST_EVENTS" --users "$INGEST_USERS"
              --http-seconds "$HTTP_SECONDS" --latency-seconds "$LATENCY_SECONDS"
              --clients "$HTTP_CLIENTS" --dir "$WORK/herald-$tag" --json)
  echo "## herald ${args[*]}" >&2
  out=$(timeout --kill-after=5 "$RUN_TIMEOUT" "$HERALD" "${args[@]}" 2>"$RESULTS_DIR/$tag.herald.err")
  rc=$?
  rm -rf "$WORK/herald-$tag"
  if [[ $rc == 124 || $rc == 137 ]]; then
    NOTES+=("herald $tag: no result within RUN_TIMEOUT=${RUN_TIMEOUT}s")
  elif [[ $rc != 0 ]]; then
    NOTES+=("herald $tag: exit $rc: $(tail -n 1 "$RESULTS_DIR/$tag.herald.err")")
  else
    echo "$out" | grep '^{' | tail -n 1 >"$json"
    echo "   $(cat "$json")" >&2
  fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for r in $(seq "$ROUNDS"); do
  for c in $REDIS_CLIENTS; do run_redis "r$r-c$c" "$c"; done
  run_herald "r$r"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "$START, $(nproc) CPUs, load average before $LOAD_BEFORE, after $LOAD_AFTER;" \
  "ROUNDS=$ROUNDS (medians), in-process $INGEST_EVENTS events, $INGEST_USERS users," \
  "HTTP ${HTTP_SECONDS}s x $HTTP_CLIENTS clients, latency ${LATENCY_SECONDS}s," \
  "Redis $REDIS_REQUESTS XADDs -P $REDIS_PIPELINE -c {${REDIS_CLIENTS// /,}}"
echo
python3 - "$RESULTS_DIR" "$ROUNDS" "$REDIS_CLIENTS" "$REDIS_PIPELINE" <<'EOF'
import json, os, statistics, sys
results, rounds, clients, pipeline = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]

def herald(key):
    vals = []
    for r in range(1, rounds + 1):
        try:
            v = json.load(open(os.path.join(results, f"r{r}.json"))).get(key)
        except Exception:
            v = None
        if isinstance(v, (int, float)) and v >= 0:
            vals.append(float(v))
    return statistics.median(vals) if vals else None

def redis(c):
    vals = []
    for r in range(1, rounds + 1):
        try:
            vals.append(float(open(os.path.join(results, f"r{r}-c{c}.redis")).read()))
        except Exception:
            pass
    return statistics.median(vals) if vals else None

def rate(v):
    return "n/a" if v is None else f"{v:,.0f}"

def ms(v):
    return "n/a" if v is None else ("> 10 s" if v == float("inf") else f"<= {v:g}")

def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")

inproc = herald("in_process_events_per_s")
http = herald("http_events_per_s")
p50 = herald("latency_p50_ms_at_most")
p99 = herald("latency_p99_ms_at_most")
per_c = {c: redis(c) for c in clients}
known = [(v, c) for c, v in per_c.items() if v is not None]
best, best_c = max(known) if known else (None, None)
redis_label = f"Redis XADD (pipelined{'' if best_c is None else f', -P {pipeline} -c {best_c}'})"

print(f"| metric | herald | {redis_label} | herald/Redis | target | result |")
print("| --- | ---: | ---: | ---: | --- | --- |")
print(f"| in-process events/s | {rate(inproc)} | | | >= 1,000,000 | "
      f"{verdict(None if inproc is None else inproc >= 1e6)} |")
ratio = "n/a" if http is None or not best else f"{http / best:.2f}"
print(f"| HTTP events/s (vs XADDs/s) | {rate(http)} | {rate(best)} | {ratio} | >= 400,000 | "
      f"{verdict(None if http is None else http >= 4e5)} |")
print(f"| | | | | >= Redis XADD | "
      f"{verdict(None if http is None or best is None else http >= best)} |")
print(f"| event->feature p50 ms, half load | {ms(p50)} | | | | |")
print(f"| event->feature p99 ms, half load | {ms(p99)} | | | < 100 | "
      f"{verdict(None if p99 is None else p99 < 100)} |")
print()
for c in clients:
    print(f"- Redis XADD -P {pipeline} -c {c}: {rate(per_c[c])} XADDs/s")
EOF
if ((${#NOTES[@]})); then
  echo
  for n in "${NOTES[@]}"; do echo "- $n"; done
fi
