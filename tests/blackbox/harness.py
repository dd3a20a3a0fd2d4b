"""Starts and stops `herald serve` for black-box tests.

Every server binds 127.0.0.1 port 0 and uses a fresh temporary data directory unless
one is given, so tests can run in parallel.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

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
