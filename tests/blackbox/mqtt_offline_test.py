"""Offline persistent sessions cost memory for the session, not for its queue.

herald-offline-sessions fills a data directory, through the real broker and store,
with SESSIONS persistent sessions holding MESSAGES queued QoS 1 messages each. herald
then starts on it: its resident memory per session must stay under 2,000 bytes over
an empty herald's (1,000,000 sessions with 10 messages each in under 2 GiB), and
devices that connect get their whole queue, in order.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import mqtt_raw as raw
from harness import HERALD, Server

OFFLINE = os.environ.get("OFFLINE_BIN",
                         os.path.join(os.path.dirname(os.path.abspath(HERALD)),
                                      "herald-offline-sessions"))
SESSIONS, MESSAGES = 20000, 10


def gauge(server, name):
    status, text, _ = server.request("GET", "/metrics")
    m = re.search(r"^%s\s+(\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


class OfflineSessionsTest(unittest.TestCase):
    def test_queues_of_offline_sessions_stay_on_disk(self):
        empty = Server("--mqtt-open")
        try:
            base = gauge(empty, "herald_process_resident_memory_bytes")
        finally:
            empty.stop()
            empty.cleanup()
        d = tempfile.mkdtemp(prefix="herald-offline-")
        try:
            subprocess.run([OFFLINE, d, str(SESSIONS), str(MESSAGES)], check=True, timeout=300,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            s = Server("--mqtt-open", data_dir=d)
            try:
                self.assertEqual(gauge(s, "herald_mqtt_sessions"), SESSIONS)
                self.assertEqual(gauge(s, "herald_mqtt_queued_messages"), SESSIONS * MESSAGES)
                rss = gauge(s, "herald_process_resident_memory_bytes")
                per_session = (rss - base) / SESSIONS
                self.assertLess(per_session, 2000, "%.0f bytes of RSS per offline session" % per_session)
                host, port = s.mqtt.rsplit(":", 1)
                for i in range(0, SESSIONS, SESSIONS // 25):
                    c = raw.RawClient(host, int(port), timeout=10)
                    self.assertTrue(c.connect("off-%d" % i, clean=False).session_present)
                    got = [c.next_publish() for _ in range(MESSAGES)]
                    self.assertEqual([p.topic for p in got], ["off/%d" % i] * MESSAGES)
                    self.assertEqual(c.publishes_within(0.2), [])
                    c.close()
                self.assertEqual(gauge(s, "herald_mqtt_queued_messages"),
                                 SESSIONS * MESSAGES - 25 * MESSAGES)
            finally:
                s.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
