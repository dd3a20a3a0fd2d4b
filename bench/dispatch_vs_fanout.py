#!/usr/bin/python3
"""dispatch_vs_fanout.py: does the engine's dispatch keep up with the gateway?

Each round runs two phases with the same herald-mqtt-bench subscribers (DEVICES
clients, client i subscribed to u/<i>, QoS 1), each against a fresh herald:

  raw       herald --mqtt-open; the bench's own publisher sends CAMPAIGNS x DEVICES
            messages of the campaign payload's size round-robin over the topics:
            the gateway's raw fan-out rate.
  campaign  herald in secure mode; DEVICES users "0".."N-1", each with a device and
            its token (the bench connects client i with device i's token), all
            following CAMPAIGNS accounts; once every device is connected, one "now"
            campaign per account (POST /v1/campaigns, followers_of). The bench counts
            what herald itself pushes (--external), first receipt to last.

Both phases report messages/s at the subscribers and herald's CPU time per message
(utime + stime from /proc between "every device connected" and the end), which the
load generator cannot cap. The answer is the median over ROUNDS rounds of
campaign rate / raw rate (the target: at least 0.8).

Usage: bench/dispatch_vs_fanout.py    (build herald and herald-mqtt-bench first)
Environment: DEVICES (10000), CAMPAIGNS (5), ROUNDS (3), BUILD_DIR (build), JSON=1,
PERF_OUT=FILE (perf record of herald during the campaigns)
"""
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
os.environ.setdefault("HERALD_BIN", os.path.join(BUILD, "herald"))
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
from harness import Server  # noqa: E402

BENCH = os.path.join(BUILD, "herald-mqtt-bench")
DEVICES = int(os.environ.get("DEVICES", "10000"))
CAMPAIGNS = int(os.environ.get("CAMPAIGNS", "5"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
TICKS = os.sysconf("SC_CLK_TCK")
MESSAGE = {"form": "image_text", "title": "{{user.id}}: 3 stories picked for you",
           "body": "Morning briefing: markets, weather and the match",
           "media": ["https://cdn.example.com/briefing.jpg"], "deep_link": "app://briefing"}


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Api:
    """One keep-alive HTTP connection to herald."""

    def __init__(self, server):
        host, port = server.http.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.key = server.admin_key

    def call(self, method, path, body=None, want=(200, 201)):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers={"Authorization": "Bearer " + self.key, "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status not in want:
            raise RuntimeError("%s %s: %d %s" % (method, path, resp.status, data[:300]))
        return json.loads(data) if data else None


def run_bench(args, ready_file, pid):
    """Runs the bench; returns (its JSON, herald's CPU seconds from ready to the end)."""
    if os.path.exists(ready_file):
        os.remove(ready_file)
    proc = subprocess.Popen([BENCH, "fanout", *args, "--ready-file", ready_file, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc


def wait_ready(proc, ready_file, timeout=180):
    deadline = time.time() + timeout
    while not os.path.exists(ready_file):
        if proc.poll() is not None or time.time() > deadline:
            out, err = proc.communicate(timeout=30)
            raise RuntimeError("bench did not get ready: " + out + err)
        time.sleep(0.05)


def finish(proc):
    out, err = proc.communicate(timeout=300)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError("bench printed no JSON: " + out + err)
    return json.loads(lines[-1])


def payload_size(work):
    """The size of the campaign's payload for a user id of the devices' length."""
    conf = os.path.join(work, "probe.toml")
    with open(conf, "w") as f:
        f.write('[server]\nvirtual_clock_start = "2026-03-02T02:00:00Z"\n')
    s = Server("--virtual-clock", data_dir=os.path.join(work, "probe"), config=conf)
    try:
        api = Api(s)
        api.call("POST", "/v1/accounts", {"id": "a0", "type": "business", "name": "A0"})
        uid = str(DEVICES - 1)
        api.call("POST", "/v1/users", {"users": [{"id": uid, "tz": "Asia/Shanghai"}]})
        api.call("POST", "/v1/follows", {"follows": [{"user_id": uid, "account_id": "a0",
                                                      "followed_at": "2026-01-01T00:00:00Z"}]})
        import paho.mqtt.client as mqtt
        import queue
        token = api.call("POST", "/v1/devices", {"user_id": uid, "device_id": "probe"})["token"]
        got, subscribed = queue.Queue(), queue.Queue()
        c = mqtt.Client(client_id="probe", clean_session=True)
        c.username_pw_set("probe", token)
        c.on_message = lambda cl, ud, msg: got.put(msg.payload)
        c.on_subscribe = lambda *a: subscribed.put(1)
        c.on_connect = lambda cl, ud, fl, rc: cl.subscribe("u/" + uid, qos=1)
        host, port = s.mqtt.rsplit(":", 1)
        c.connect(host, int(port))
        c.loop_start()
        subscribed.get(timeout=10)
        api.call("POST", "/v1/campaigns", {"account_id": "a0", "message": MESSAGE,
                                           "target": {"followers_of": "a0"}, "schedule": {"type": "now"}})
        size = len(got.get(timeout=20))
        c.loop_stop()
        c.disconnect()
        return size
    finally:
        s.cleanup()


def raw_phase(work, payload):
    s = Server("--mqtt-open", data_dir=os.path.join(work, "raw"), max_open_files=20000)
    try:
        host, port = s.mqtt.rsplit(":", 1)
        ready = os.path.join(work, "raw.ready")
        proc = run_bench(["--host", host, "--port", port, "--clients", str(DEVICES),
                          "--messages", str(DEVICES * CAMPAIGNS), "--payload", str(payload), "--qos", "1"],
                         ready, s.proc.pid)
        wait_ready(proc, ready)
        before = cpu_s(s.proc.pid)
        result = finish(proc)
        used = cpu_s(s.proc.pid) - before
        return result, used
    finally:
        s.cleanup()
        shutil.rmtree(os.path.join(work, "raw"), ignore_errors=True)


def campaign_phase(work):
    conf = os.path.join(work, "campaign.toml")
    with open(conf, "w") as f:
        f.write('[server]\nvirtual_clock_start = "2026-03-02T02:00:00Z"\n')
    data = os.path.join(work, "campaign")
    s = Server("--virtual-clock", data_dir=data, config=conf, max_open_files=20000)
    try:
        api = Api(s)
        users = [str(i) for i in range(DEVICES)]
        for k in range(CAMPAIGNS):
            api.call("POST", "/v1/accounts", {"id": "a%d" % k, "type": "business", "name": "A%d" % k})
        for i in range(0, DEVICES, 5000):
            api.call("POST", "/v1/users", {"users": [{"id": u, "tz": "Asia/Shanghai",
                                                      "profile": {"name": "User " + u}} for u in users[i:i + 5000]]})
        follows = [{"user_id": u, "account_id": "a%d" % k, "followed_at": "2026-01-01T00:00:00Z"}
                   for u in users for k in range(CAMPAIGNS)]
        for i in range(0, len(follows), 10000):
            api.call("POST", "/v1/follows", {"follows": follows[i:i + 10000]})
        creds = os.path.join(work, "credentials")
        with open(creds, "w") as f:
            for u in users:
                token = api.call("POST", "/v1/devices", {"user_id": u, "device_id": "d" + u})["token"]
                f.write("d%s %s\n" % (u, token))
        host, port = s.mqtt.rsplit(":", 1)
        ready = os.path.join(work, "campaign.ready")
        proc = run_bench(["--host", host, "--port", port, "--clients", str(DEVICES), "--qos", "1",
                          "--external", str(DEVICES * CAMPAIGNS), "--credentials", creds,
                          "--duration", "120", "--drain", "5"], ready, s.proc.pid)
        wait_ready(proc, ready)
        before = cpu_s(s.proc.pid)
        perf = None
        if os.environ.get("PERF_OUT"):  # profile herald during the campaigns
            perf = subprocess.Popen(["perf", "record", "-F", "1999", "-g", "-p", str(s.proc.pid),
                                     "-o", os.environ["PERF_OUT"]], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        ids = []
        for k in range(CAMPAIGNS):
            c = api.call("POST", "/v1/campaigns", {"account_id": "a%d" % k, "message": MESSAGE,
                                                   "target": {"followers_of": "a%d" % k},
                                                   "schedule": {"type": "now"}})
            ids.append(c["id"])
        result = finish(proc)
        used = cpu_s(s.proc.pid) - before
        if perf:
            perf.send_signal(2)
            perf.wait(timeout=60)
        funnel = [api.call("GET", "/v1/campaigns/" + i) for i in ids]
        return result, used, funnel
    finally:
        s.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def main():
    work = tempfile.mkdtemp(prefix="dispatch-vs-fanout-")
    try:
        payload = payload_size(work)
        print("campaign payload: %d bytes; %d devices, %d campaigns a round, %d rounds"
              % (payload, DEVICES, CAMPAIGNS, ROUNDS), flush=True)
        rows = []
        for r in range(ROUNDS):
            raw, raw_cpu = raw_phase(work, payload)
            camp, camp_cpu, funnel = campaign_phase(work)
            n_raw = max(raw.get("received", 0), 1)
            n_camp = max(camp.get("received", 0), 1)
            row = {"round": r + 1,
                   "raw_msgs_per_s": raw.get("msgs_per_s", 0), "raw_received": raw.get("received", 0),
                   "raw_cpu_us_per_msg": raw_cpu / n_raw * 1e6,
                   "campaign_msgs_per_s": camp.get("msgs_per_s", 0), "campaign_received": camp.get("received", 0),
                   "campaign_cpu_us_per_msg": camp_cpu / n_camp * 1e6,
                   "campaign_sent": sum(f.get("funnel", {}).get("sent", 0) for f in funnel)}
            row["ratio"] = row["campaign_msgs_per_s"] / row["raw_msgs_per_s"] if row["raw_msgs_per_s"] else 0
            rows.append(row)
            print("round %d: raw %.0f msgs/s (%d, %.1f us CPU/msg)  campaign %.0f msgs/s (%d, %.1f us CPU/msg)"
                  "  ratio %.2f" % (r + 1, row["raw_msgs_per_s"], row["raw_received"], row["raw_cpu_us_per_msg"],
                                    row["campaign_msgs_per_s"], row["campaign_received"],
                                    row["campaign_cpu_us_per_msg"], row["ratio"]), flush=True)
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "round"}
        print("median: raw %.0f msgs/s, campaign %.0f msgs/s, ratio %.2f; herald CPU per message raw %.1f us, "
              "campaign %.1f us" % (med["raw_msgs_per_s"], med["campaign_msgs_per_s"], med["ratio"],
                                    med["raw_cpu_us_per_msg"], med["campaign_cpu_us_per_msg"]))
        if os.environ.get("JSON"):
            print(json.dumps({"rounds": rows, "median": med, "payload_bytes": payload}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
