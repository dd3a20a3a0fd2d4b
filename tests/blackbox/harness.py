"""Starts and stops `herald serve` for black-box tests.

Every server binds 127.0.0.1 port 0 and uses a fresh temporary data directory unless
one is given, so tests can run in parallel.
"""
import json
import queue
import secrets
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

try:
    import paho.mqtt.client as mqtt
except ImportError:  # only Devices needs it
    mqtt = None

HERALD = os.environ.get("HERALD_BIN", "build/herald")
LISTEN_RE = re.compile(r"^listening http=(\S+) mqtt=(\S+) ws=(\S+)$")


class Server:
    def __init__(self, *extra, data_dir=None, config=None, max_open_files=None):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="herald-bb-")
        args = [HERALD, "serve", "--data-dir", self.data_dir,
                "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
                "--ws-listen", "127.0.0.1:0", *extra]
        if config:
            args += ["--config", config]
        def limit():  # in the child, before exec: its own descriptor limit
            if max_open_files:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, preexec_fn=limit)
        self.stdout_lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("herald exited before listening: " + self.proc.stderr.read())
            self.stdout_lines.append(line.rstrip("\n"))
            m = LISTEN_RE.match(line.strip())
            if m:
                self.http, self.mqtt, self.ws = m.groups()
                break
        else:
            raise RuntimeError("herald did not print its listening line in time")
        key_file = os.path.join(self.data_dir, "admin.key")
        with open(key_file) as f:
            self.admin_key = f.read().strip()

    def request(self, method, path, body=None, key=None, headers=None, timeout=10):
        """Returns (status, parsed JSON or text, headers)."""
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        req = urllib.request.Request("http://" + self.http + path, data=data, method=method)
        if key:
            req.add_header("Authorization", "Bearer " + key)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, _decode(resp), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, _decode(e), dict(e.headers)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Sends `sig` and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f and not f.closed:
                f.close()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                os.remove(self.data_dir.rstrip("/") + ".privacy.key")
            except OSError:
                pass


def _decode(resp):
    raw = resp.read()
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(raw)
    return raw.decode(errors="replace")


def run_herald(*args, timeout=30):
    """Runs herald to completion; returns (exit code, stdout, stderr)."""
    p = subprocess.run([HERALD, *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def local_iso(hour, minute=0, day=2):
    """HH:MM on `day` March 2026 in Shanghai (UTC+8), as UTC ISO-8601."""
    total = (day - 1) * 24 * 60 + hour * 60 + minute - 8 * 60
    d, rest = divmod(total, 24 * 60)
    return "2026-03-%02dT%02d:%02d:00Z" % (d + 1, rest // 60, rest % 60)


class Devices:
    """For a test with ok(method, path, body, status) and a Server `s`: one paho
    client per user (persistent session, QoS 1), acknowledging every
    push; `got[user]` is the list of payloads received."""

    def __init__(self, test):
        self.test = test
        self.clients = {}
        self.creds = {}
        self.got = {}
        self.q = queue.Queue()

    def add(self, user):
        device_id = "d-" + secrets.token_hex(4)
        token = self.test.ok("POST", "/v1/devices", {"user_id": user, "device_id": device_id}, 201)["token"]
        self.creds[user] = (device_id, token)
        self.got.setdefault(user, [])
        self.connect(user)

    def connect(self, user):
        device_id, token = self.creds[user]
        host, port = self.test.s.mqtt.rsplit(":", 1)
        subscribed = queue.Queue()
        c = mqtt.Client(client_id=device_id, clean_session=False)
        c.username_pw_set(device_id, token)

        def on_message(cl, ud, msg, user=user):
            p = json.loads(msg.payload)
            self.got[user].append(p)
            self.q.put((user, p))

        c.on_message = on_message
        c.on_subscribe = lambda cl, ud, mid, qos: subscribed.put(qos)
        c.on_connect = lambda cl, ud, flags, rc: cl.subscribe("u/" + user, qos=1)
        c.connect(host, int(port), keepalive=60)
        c.loop_start()
        self.clients[user] = c
        subscribed.get(timeout=20)

    def reconnect_all(self):
        self.close()
        for user in self.creds:
            self.connect(user)

    def close(self):
        for c in self.clients.values():
            c.loop_stop()
            try:
                c.disconnect()
            except Exception:
                pass
        self.clients = {}
