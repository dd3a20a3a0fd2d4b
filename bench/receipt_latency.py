#!/usr/bin/python3
"""receipt_latency.py: device receipt round trip (publish on r/<user> -> PUBACK).

Starts `herald serve` in secure mode with the event log and the store on fsync
(log.sync = store.sync = "fsync"), registers a user and a device, connects it over
MQTT, and publishes RATE receipts a second at QoS 1 for DURATION seconds without
waiting for each PUBACK. herald acknowledges a receipt only once it is durable in the
event log, so the round trip is the time to the log's group commit and fsync. Prints
p50, p99, p999 and max in milliseconds, and how many PUBACKs came back.

The disk is shared, and its fdatasync sometimes stalls for hundreds of milliseconds,
so the same run also measures two peers on the same directory at the same rate:
Redis 7 with `appendonly yes, appendfsync always` (an RPUSH answered once the AOF is
fsynced), and a bare loop that appends 200 bytes and calls fdatasync (the disk's floor).

Usage: bench/receipt_latency.py [--rate 1000] [--duration 10] [--herald build/herald]
                                [--rounds 1]
"""
import argparse
import shutil
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def utf8(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def remaining(n):
    out = bytearray()
    while True:
        d, n = n % 128, n // 128
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + remaining(len(body)) + body


def connect(client_id, user, password):
    var = utf8("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
    return packet(1, 0, var + utf8(client_id) + utf8(user) + utf8(password))


def publish(topic, payload, pid):
    return packet(3, 0x02, utf8(topic) + struct.pack("!H", pid) + payload)


def request(base, method, path, body, key):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method)
    req.add_header("Authorization", "Bearer " + key)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def paced(rate, duration, send):
    """Calls send(i) at `rate` per second for `duration` seconds."""
    n = int(rate * duration)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        while time.perf_counter() < due:
            time.sleep(max(0, due - time.perf_counter()))
        send(i)
    return n


def open_loop(s, rate, duration, frame, reply_len):
    """Sends frame(i) at `rate` without waiting for answers; a reader thread matches
    answers of reply_len(buf) bytes, in order, to the requests. Returns latencies (ms)."""
    sent, lat = [], []
    lock = threading.Lock()

    def reader():
        buf, k = b"", 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return
            buf += chunk
            now = time.perf_counter()
            while True:
                n = reply_len(buf)
                if not n:
                    break
                buf = buf[n:]
                with lock:
                    lat.append((now - sent[k]) * 1000)
                k += 1

    threading.Thread(target=reader, daemon=True).start()

    def send(i):
        data = frame(i)
        with lock:
            sent.append(time.perf_counter())
        s.sendall(data)

    n = paced(rate, duration, send)
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if len(lat) >= n:
                break
        time.sleep(0.05)
    with lock:
        return n, sorted(lat)


def run_herald(a, d):
    conf = os.path.join(d, "fsync.toml")
    with open(conf, "w") as f:
        f.write('[log]\nsync = "fsync"\n[store]\nsync = "fsync"\n[server]\nlog_level = "warn"\n')
    proc = subprocess.Popen([a.herald, "serve", "--data-dir", os.path.join(d, "herald"), "--config", conf,
                             "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
                             "--ws-listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        http = mqtt = None
        for line in proc.stdout:
            if line.startswith("listening"):
                parts = dict(p.split("=", 1) for p in line.split()[1:])
                http, mqtt = parts["http"], parts["mqtt"]
                break
        key = open(os.path.join(d, "herald", "admin.key")).read().strip()
        base = "http://" + http
        request(base, "POST", "/v1/users", {"users": [{"id": "rl"}]}, key)
        dev = request(base, "POST", "/v1/devices", {"user_id": "rl", "device_id": "rl-d"}, key)
        host, port = mqtt.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(connect("rl-d", "rl-d", dev["token"]))
        assert s.recv(4)[3] == 0, "CONNACK refused"

        def puback_len(buf):
            if len(buf) < 4:
                return 0
            if buf[0] >> 4 != 4:
                raise SystemExit("unexpected packet %r" % buf[:4])
            return 4

        body = lambda i: publish("r/rl", b'{"message_id":"m%d","type":"opened"}' % i, i % 65535 + 1)
        r = open_loop(s, a.rate, a.duration, body, puback_len)
        s.close()
        return r
    finally:
        proc.terminate()
        proc.wait(20)


def run_redis(a, d):
    port = free_port()
    rd = os.path.join(d, "redis")
    os.makedirs(rd)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", rd,
                             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                             "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def rpush(i):
            v = b'{"message_id":"m%d","type":"opened"}' % i
            return b"*3\r\n$5\r\nRPUSH\r\n$8\r\nreceipts\r\n$%d\r\n%s\r\n" % (len(v), v)

        def int_reply_len(buf):
            e = buf.find(b"\r\n")
            if e < 0:
                return 0
            if buf[:1] != b":":
                raise SystemExit("unexpected redis reply %r" % buf[:e])
            return e + 2

        r = open_loop(s, a.rate, a.duration, rpush, int_reply_len)
        s.close()
        return r
    finally:
        proc.terminate()
        proc.wait(20)


def run_disk(a, d):
    fd = os.open(os.path.join(d, "fdatasync.bin"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    lat = []

    def one(i):
        t = time.perf_counter()
        os.write(fd, b"x" * 200)
        os.fdatasync(fd)
        lat.append((time.perf_counter() - t) * 1000)

    n = paced(a.rate, a.duration, one)
    os.close(fd)
    return n, sorted(lat)


def report(name, n, lat):
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] if lat else float("nan")
    print("%-28s %6d sent %6d answered  ms p50 %8.3f p99 %8.3f p999 %8.3f max %8.3f"
          % (name, n, len(lat), q(0.5), q(0.99), q(0.999), lat[-1] if lat else float("nan")),
          flush=True)
    return q(0.99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--herald", default=os.path.join(os.path.dirname(__file__), "..", "build", "herald"))
    a = ap.parse_args()
    print("receipt round trip at %.0f/s for %.0f s, fsync on" % (a.rate, a.duration))
    p99 = {"herald": [], "redis": [], "disk": []}
    for r in range(a.rounds):
        d = tempfile.mkdtemp(prefix="herald-receipts-", dir=os.environ.get("BENCH_DIR"))
        try:
            p99["herald"].append(report("herald PUBLISH->PUBACK", *run_herald(a, d)))
            p99["redis"].append(report("redis RPUSH (fsync always)", *run_redis(a, d)))
            p99["disk"].append(report("fdatasync of 200 B", *run_disk(a, d)))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    if a.rounds > 1:
        med = lambda v: sorted(v)[len(v) // 2]
        print("median p99 ms over %d rounds: herald %.3f, redis %.3f, fdatasync %.3f"
              % (a.rounds, med(p99["herald"]), med(p99["redis"]), med(p99["disk"])))


if __name__ == "__main__":
    main()
