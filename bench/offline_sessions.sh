#!/usr/bin/env bash
# offline_sessions.sh: the memory of a broker whose sessions are offline with queues.
#
# Fills a data directory with SESSIONS persistent sessions holding MESSAGES queued
# QoS 1 messages each (herald-offline-sessions: the real broker and store), starts
# `herald serve --mqtt-open` on it, and reports start-up time, resident memory,
# sessions and queued messages from /metrics, then connects DEVICES of the sessions
# with mosquitto_sub and checks that each gets its whole queue. The target: 1,000,000
# sessions with 10 messages each in under 2 GiB of broker RSS.
#
# Usage: bench/offline_sessions.sh        (build first: ninja -C build herald herald-offline-sessions)
# Environment: SESSIONS (1000000) MESSAGES (10) DEVICES (100) BUILD_DIR (build)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SESSIONS=${SESSIONS:-1000000}
MESSAGES=${MESSAGES:-10}
DEVICES=${DEVICES:-100}
WORK=$(mktemp -d /tmp/offline-sessions.XXXXXX)
trap 'stop_process "${PID:-}"; rm -rf "$WORK"' EXIT

metric() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

echo "filling $SESSIONS sessions x $MESSAGES messages ..."
t0=$(date +%s.%N)
"$BUILD_DIR/herald-offline-sessions" "$WORK/data" "$SESSIONS" "$MESSAGES" 2>/dev/null || exit 1
t1=$(date +%s.%N)
echo "filled in $(echo "$t1 - $t0" | bc) s; store on disk: $(du -sh "$WORK/data/store" | cut -f1)"

HTTP=$(free_port); MQTT=$(free_port)
t0=$(date +%s.%N)
"$BUILD_DIR/herald" serve --data-dir "$WORK/data" --mqtt-open --http-listen 127.0.0.1:$HTTP \
  --mqtt-listen 127.0.0.1:$MQTT --ws-listen 127.0.0.1:0 --log-level warn > "$WORK/out" 2>&1 &
PID=$!
until grep -q listening "$WORK/out"; do
  kill -0 $PID 2>/dev/null || { cat "$WORK/out"; exit 1; }
  sleep 0.1
done
t1=$(date +%s.%N)
sleep 2
rss=$(metric herald_process_resident_memory_bytes)
echo "start-up: $(echo "$t1 - $t0" | bc) s"
echo "sessions: $(metric herald_mqtt_sessions), queued messages: $(metric herald_mqtt_queued_messages)"
echo "resident memory: $rss bytes ($(echo "scale=1; $rss / 1048576" | bc) MiB; target < 2048 MiB)"
ok=0
for i in $(seq 0 $((SESSIONS / DEVICES)) $((SESSIONS - 1)) | head -n "$DEVICES"); do
  n=$(mosquitto_sub -h 127.0.0.1 -p "$MQTT" -i "off-$i" -c -q 1 -t "off/$i" -C "$MESSAGES" -W 10 | wc -l)
  [[ $n -eq $MESSAGES ]] && ok=$((ok + 1))
done
echo "devices that got their whole queue: $ok of $DEVICES"
echo "resident memory after: $(metric herald_process_resident_memory_bytes) bytes"
