# Helpers shared by the comparison scripts (source it; it only defines functions).

# stop_process PID: SIGTERM, then SIGKILL if it is still running after 10 s; reaps it.
stop_process() {
  local pid=$1
  [[ -z $pid ]] && return
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# free_port: a free loopback port below the ephemeral range, so the benchmark's own
# outgoing connections can never have taken it; prints 0 when none was found.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo 0
}
