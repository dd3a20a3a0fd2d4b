"""The MQTT broker a black-box test talks to: herald, or Mosquitto as a reference.

MQTT_TARGET=herald (the default) runs `herald serve --mqtt-open`; MQTT_TARGET=mosquitto
runs /usr/sbin/mosquitto, so the same tests can be checked against a broker known to
conform. Both listen on 127.0.0.1 only and expose:

    host, port        the MQTT/TCP listener
    ws_port           MQTT over WebSocket (path /mqtt)
    restart(kill9)    stops the broker (SIGKILL if kill9, else SIGTERM) and starts it
                      again on the same data; returns (host, port), which may change
    stop()            stops it and removes its files
"""
import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness

TARGET = os.environ.get("MQTT_TARGET", "herald")
if TARGET not in ("herald", "mosquitto"):
    raise SystemExit("MQTT_TARGET must be herald or mosquitto, not %r" % TARGET)

MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
START_TIMEOUT_S = 30

# harness.HERALD defaults to build/herald relative to the working directory; when a test
# is run by hand from tests/blackbox, fall back to the repository's build directory.
if "HERALD_BIN" not in os.environ and not os.path.exists(harness.HERALD):
    harness.HERALD = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "..", "build", "herald"))


def make_broker():
    """A started broker in open mode (anonymous clients, no ACL) for MQTT_TARGET."""
    return MosquittoBroker() if TARGET == "mosquitto" else HeraldBroker(open_mode=True)


def _free_ports(n):
    """n distinct loopback ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


class MosquittoBroker:
    """/usr/sbin/mosquitto with a temporary config, persistence and log."""

    name = "mosquitto"

    def __init__(self):
        self.host = "127.0.0.1"
        self.dir = tempfile.mkdtemp(prefix="mosquitto-bb-")
        self.port, self.ws_port = _free_ports(2)
        self.config = os.path.join(self.dir, "mosquitto.conf")
        self.log_path = os.path.join(self.dir, "mosquitto.log")
        with open(self.config, "w") as f:
            f.write("\n".join([
                # As root, mosquitto would otherwise switch to user "mosquitto", which
                # cannot write to our temporary directory.
                "user " + pwd.getpwuid(os.getuid()).pw_name,
                "per_listener_settings false",
                "allow_anonymous true",
                # Persistence is what the restart tests need. Mosquitto saves its
                # in-memory database every autosave_interval seconds and on shutdown,
                # not as part of acknowledging a PUBLISH.
                "persistence true",
                "persistence_location " + self.dir + "/",
                "autosave_interval 1",
                "log_dest file " + self.log_path,
                "log_type all",
                "listener %d %s" % (self.port, self.host),
                "listener %d %s" % (self.ws_port, self.host),
                "protocol websockets",
                "",
            ]))
        self.proc = None
        atexit.register(self._kill_if_running)  # if a test run dies before stop()
        self._start()

    def _kill_if_running(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def _start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.config], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: " + self.proc.stderr.read().decode()
                                   + self.log_tail())
            if _accepts(self.host, self.port) and _accepts(self.host, self.ws_port):
                return
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("mosquitto did not listen in time")

    def _halt(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()

    def restart(self, kill9=True):
        self._halt(signal.SIGKILL if kill9 else signal.SIGTERM)
        self._start()
        return self.host, self.port

    def stop(self):
        self._halt(signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class HeraldBroker:
    """`herald serve` through harness.Server; open_mode adds --mqtt-open.

    The harness picks port 0, so every (re)start gets new ports: read host/port/ws_port
    after restart(). Its stdout and stderr are drained by threads so that a chatty log
    can never fill a pipe and stall the server; log_tail() shows the end of them.
    """

    name = "herald"

    def __init__(self, open_mode=True, extra=()):
        self.flags = (["--mqtt-open"] if open_mode else []) + list(extra)
        loops = os.environ.get("MQTT_EVENT_LOOPS")
        if loops and "--config" not in self.flags:
            # The whole suite can run with connections spread over several loops.
            conf = os.path.join(tempfile.mkdtemp(prefix="herald-loops-"), "loops.toml")
            with open(conf, "w") as f:
                f.write("[mqtt]\nevent_loops = %d\n" % int(loops))
            self.flags += ["--config", conf]
        self.data_dir = tempfile.mkdtemp(prefix="herald-mqtt-bb-")
        self.server = None
        self.lines = []
        atexit.register(self._kill_if_running)  # if a test run dies before stop()
        self._start()

    def _kill_if_running(self):
        if self.server and self.server.proc.poll() is None:
            self.server.proc.kill()

    def _start(self):
        self.server = harness.Server(*self.flags, data_dir=self.data_dir)
        self.lines.extend(self.server.stdout_lines)
        self._drains = [threading.Thread(target=self._drain, args=(f,), daemon=True)
                        for f in (self.server.proc.stdout, self.server.proc.stderr)]
        for t in self._drains:
            t.start()
        host, port = self.server.mqtt.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.ws_port = int(self.server.ws.rsplit(":", 1)[1])

    def _drain(self, stream):
        try:
            for line in stream:
                self.lines.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass

    def _halt(self, sig):
        proc = self.server.proc
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for t in self._drains:
            t.join(timeout=5)
        self.server.cleanup()  # closes the pipes; the data dir is ours, not the harness's

    def restart(self, kill9=True):
        self._halt(signal.SIGKILL if kill9 else signal.SIGTERM)
        self._start()
        return self.host, self.port

    def stop(self):
        self._halt(signal.SIGTERM)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, n=40):
        return "\n".join(self.lines[-n:])
