"""Black-box test of herald's Kafka intake against librdkafka's mock cluster.

kafka_mock_broker (src/log/tests/kafka_mock_broker.cc) runs the mock cluster in its
own process with the topic herald.events (4 partitions) and also produces records
to it. herald serve --kafka-brokers consumes them in consumer group "herald" as
events of the default tenant; the test checks, through GET /v1/users/{id}/features
and /metrics, that:
  - every event of every record arrives exactly once, including records that carry
    several NDJSON events;
  - a record that is not JSON, an invalid event line and an empty record are
    skipped (the first two counted in herald_kafka_invalid_events_total) without
    holding back the records after them in the same partition;
  - after SIGTERM (which commits the offsets of what is durable) records produced
    while herald is down, and records produced once it is back, are consumed by
    the restarted herald on the same data directory: exactly those, nothing of the
    first run again (its herald_kafka_consumed_total counts only the new records),
    nothing lost.
Timing: a consumer group takes about 3 s to form on the mock cluster. Rejoining after
herald left takes much longer: librdkafka 2.0's mock puts a group whose last member
left into the Joining state with a timer of the member's session.timeout.ms minus 1 s
(herald keeps librdkafka's 45 s default and has no setting for it), and a new member
waits that out, where a real broker would empty the group at once and take
group.initial.rebalance.delay.ms (3 s). So the restarted herald needs about 45 s
before it consumes; the test allows 75 s. Every wait is bounded; the whole test takes
about a minute.
"""
import collections
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Server

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.environ.get("KAFKA_MOCK_BIN",
                      os.path.join(HERE, "..", "..", "build", "src", "log", "kafka_mock_broker"))

TOPIC = "herald.events"
USERS = ["kafka-u%d" % i for i in range(6)]
TYPES = ["app_open", "share", "pay", "follow"]
BASE_TS = 1767571200  # 2026-01-05T00:00:00Z
# KAFKA_MOCK_DEBUG=mock (librdkafka debug contexts) logs the cluster's side to stderr.
DEBUG = ["--debug", os.environ["KAFKA_MOCK_DEBUG"]] if os.environ.get("KAFKA_MOCK_DEBUG") else []
RS = "\x1e"  # kafka_mock_broker produce: stands for a newline inside one record


class MockKafka:
    """The mock cluster in a child process; it exits when its stdin closes."""

    def __init__(self):
        self.proc = subprocess.Popen([MOCK, "serve", "--brokers", "3", "--partitions", "4",
                                      "--max-seconds", "170"] + DEBUG,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("bootstrap="):
            self.stop()
            raise RuntimeError("kafka_mock_broker did not start: %r %s" % (line, self.stderr))
        self.bootstrap = line.strip().split("=", 1)[1]

    def produce(self, records):
        """Produces (key, payload) records in order; returns [(partition, offset)]."""
        lines = []
        for key, payload in records:
            assert "\n" not in payload and "\t" not in key
            lines.append(key + "\t" + payload + "\n")
        p = subprocess.run([MOCK, "produce", "--bootstrap", self.bootstrap, "--topic", TOPIC,
                            "--timeout-ms", "20000"],
                           input="".join(lines), capture_output=True, text=True, timeout=40)
        if p.returncode != 0:
            raise AssertionError("produce failed (%d): %s %s" % (p.returncode, p.stdout, p.stderr))
        placed = []
        for line in p.stdout.splitlines():
            m = re.match(r"^ok \d+ partition=(\d+) offset=(\d+)$", line)
            if not m:
                raise AssertionError("unexpected produce output: %r" % line)
            placed.append((int(m.group(1)), int(m.group(2))))
        if len(placed) != len(records):
            raise AssertionError("produced %d of %d records" % (len(placed), len(records)))
        return placed

    def stop(self):
        self.stderr = ""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # its signal to stop
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr = self.proc.stderr.read()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f and not f.closed:
                f.close()


class Events:
    """Makes events with ever-increasing timestamps and tracks the expected totals."""

    def __init__(self):
        self.n = 0
        self.expected = collections.defaultdict(collections.Counter)  # user -> type -> count

    def event(self, user, etype=None, count=True):
        etype = etype or TYPES[self.n % len(TYPES)]
        e = {"user_id": user, "type": etype, "ts": BASE_TS + self.n}
        self.n += 1
        if count:
            self.expected[user][etype] += 1
        return json.dumps(e, separators=(",", ":"))

    def single_records(self, per_user):
        """One record per event, users interleaved, each keyed by its user."""
        return [(u, self.event(u)) for _ in range(per_user) for u in USERS]

    def multi_record(self, user, k):
        """One record carrying k NDJSON events of `user`."""
        return (user, RS.join(self.event(user) for _ in range(k)) + RS)


def metric(server, name):
    """Sum of the samples of `name` over all label sets (None when absent)."""
    status, text, _ = server.request("GET", "/metrics")
    assert status == 200, status
    total, seen = 0.0, False
    for line in text.splitlines():
        m = re.match(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if m:
            total += float(m.group(1))
            seen = True
    return total if seen else None


class KafkaTest(unittest.TestCase):
    def setUp(self):
        if not os.access(MOCK, os.X_OK):
            self.fail("kafka_mock_broker not found at %s (build it or set KAFKA_MOCK_BIN)" % MOCK)
        self.kafka = MockKafka()
        self.data_dir = tempfile.mkdtemp(prefix="herald-bb-kafka-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        self.kafka.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def start_herald(self):
        s = Server("--kafka-brokers", self.kafka.bootstrap, data_dir=self.data_dir)
        self.servers.append(s)
        return s

    def totals(self, server, user):
        status, body, _ = server.request("GET", "/v1/users/%s/features" % user,
                                         key=server.admin_key)
        if status == 404:
            return collections.Counter()
        self.assertEqual(status, 200, body)
        return collections.Counter({t: n for t, n in body["events_total"].items() if n})

    def wait_for_expected(self, server, events, timeout=30):
        """Waits until every user's totals equal the expected ones exactly; then
        checks they stay so (nothing arrives twice)."""
        deadline = time.time() + timeout
        while True:
            got = {u: self.totals(server, u) for u in USERS}
            want = {u: collections.Counter(events.expected[u]) for u in USERS}
            if got == want:
                break
            for u in USERS:  # more than expected can never become right by waiting
                for t, n in got[u].items():
                    self.assertLessEqual(n, want[u][t], "%s has too many %s: %s" % (u, t, got))
            if time.time() > deadline:
                self.fail("features never matched:\n got  %s\n want %s\n herald consumed %s" %
                          (got, want, metric(server, "herald_kafka_consumed_total")))
            time.sleep(0.1)
        time.sleep(1.0)
        got = {u: self.totals(server, u) for u in USERS}
        self.assertEqual(got, {u: collections.Counter(events.expected[u]) for u in USERS})

    def test_consumes_exactly_once_across_a_restart(self):
        events = Events()
        started = time.time()

        # --- First run: records produced while herald is up.
        s1 = self.start_herald()
        first = events.single_records(per_user=5)                  # 30 records
        first.append(events.multi_record(USERS[0], 4))              # 1 record, 4 events
        bad_index = len(first)
        first.append((USERS[1], "this is not json {"))            # invalid record
        # One record of three lines, the middle one an invalid event.
        bad_line = json.dumps({"user_id": USERS[2], "type": "no_such_type", "ts": BASE_TS})
        first.append((USERS[2], events.event(USERS[2]) + RS + bad_line + RS +
                      events.event(USERS[2])))
        first.append((USERS[3], ""))                                # empty record
        first += events.single_records(per_user=2)                 # after the bad ones
        placed = self.kafka.produce(first)
        self.assertGreater(len({p for p, _ in placed}), 1, "all records in one partition")
        # The invalid record's partition has valid records after it.
        bad_at = placed[bad_index]
        self.assertTrue(any(p == bad_at[0] and o > bad_at[1] for p, o in placed))

        self.wait_for_expected(s1, events)
        self.assertEqual(metric(s1, "herald_kafka_invalid_events_total"), 2)
        self.assertEqual(metric(s1, "herald_kafka_consumed_total"), len(first))
        self.assertEqual(metric(s1, "herald_kafka_redelivered_total") or 0, 0)

        # --- SIGTERM commits; records produced while herald is down wait in Kafka.
        self.assertEqual(s1.stop(), 0, s1.stderr)
        second = events.single_records(per_user=3)
        second.append(events.multi_record(USERS[4], 3))
        second.append((USERS[5], "[1, 2"))                          # invalid record
        second += events.single_records(per_user=1)
        self.kafka.produce(second)

        # --- Restart on the same data dir: exactly the new records are consumed.
        s2 = self.start_herald()
        self.wait_for_expected(s2, events, timeout=75)  # the mock's slow rejoin, see above
        self.assertEqual(metric(s2, "herald_kafka_consumed_total"), len(second))
        self.assertEqual(metric(s2, "herald_kafka_invalid_events_total"), 1)

        # --- And it keeps consuming live after the resume.
        third = events.single_records(per_user=2)
        self.kafka.produce(third)
        self.wait_for_expected(s2, events)
        self.assertEqual(metric(s2, "herald_kafka_consumed_total"), len(second) + len(third))
        self.assertEqual(metric(s2, "herald_kafka_redelivered_total") or 0, 0)
        self.assertEqual(s2.stop(), 0, s2.stderr)
        print("kafka end to end took %.1f s" % (time.time() - started))


if __name__ == "__main__":
    unittest.main(verbosity=2)
