"""Black-box tests of the event pipeline: ingest, validation, features, kill -9 replay."""
import gzip
import json
import os
import signal
import tempfile
import time
import unittest

from harness import Server


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events)


class EventsTest(unittest.TestCase):
    def setUp(self):
        self.s = Server()
        self.k = self.s.admin_key

    def tearDown(self):
        self.s.cleanup()

    def post(self, events, ndjson_body=False, headers=None, raw=None):
        h = dict(headers or {})
        body = raw
        if body is None:
            if ndjson_body:
                body = ndjson(events)
                h["Content-Type"] = "application/x-ndjson"
            else:
                body = json.dumps(events)
        return self.s.request("POST", "/v1/events", body, key=self.k, headers=h)

    def features(self, user, server=None):
        status, body, _ = (server or self.s).request("GET", "/v1/users/%s/features" % user,
                                                      key=self.k)
        return status, body

    def wait_total(self, user, etype, want, server=None):
        deadline = time.time() + 10
        while time.time() < deadline:
            status, body = self.features(user, server)
            if status == 200 and body["events_total"][etype] >= want:
                return body
            time.sleep(0.05)
        self.fail("features of %s never reached %s=%d" % (user, etype, want))

    def test_partial_acceptance_names_each_rejected_line(self):
        events = [
            {"user_id": "u1", "type": "app_open", "ts": "2026-01-05T08:00:00+08:00"},
            {"user_id": "u1", "type": "no_such_type", "ts": 1767571200},
            {"user_id": "u1", "type": "location", "ts": 1767571200, "attrs": {"lat": 91, "lng": 0}},
            {"user_id": "u1", "type": "read", "ts": 1767571200},
            {"user_id": "", "type": "app_open", "ts": 1767571200},
            {"user_id": "u1", "type": "app_open", "ts": 1767571201, "colour": "red"},
            {"user_id": "u1", "type": "read", "ts": 1767571202, "attrs": {"item": "a1"}},
        ]
        for nd in (False, True):
            status, body, _ = self.post(events, ndjson_body=nd)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["accepted"], 2)
            rejected = {r["index"]: r["error"] for r in body["rejected"]}
            self.assertEqual(sorted(rejected), [1, 2, 3, 4, 5])
            self.assertIn("type", rejected[1])
            self.assertIn("attrs.lat", rejected[2])
            self.assertIn("attrs.item", rejected[3])
            self.assertIn("user_id", rejected[4])
            self.assertIn("colour", rejected[5])
        body = self.wait_total("u1", "read", 2)
        self.assertEqual(body["events_total"]["app_open"], 2)

    def test_malformed_body_and_gzip(self):
        status, body, _ = self.post(None, raw='[{"user_id": "u1",')
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_json"))
        events = [{"user_id": "gz", "type": "share", "ts": 1767571200 + i} for i in range(100)]
        status, body, _ = self.post(None, raw=gzip.compress(ndjson(events).encode()),
                                    headers={"Content-Type": "application/x-ndjson",
                                             "Content-Encoding": "gzip"})
        self.assertEqual((status, body["accepted"]), (200, 100))
        status, body, _ = self.post(None, raw=b"\x1f\x8bnot gzip",
                                    headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 400)
        self.wait_total("gz", "share", 100)

    def test_idempotency_key_makes_retries_safe(self):
        events = [{"user_id": "idem", "type": "pay", "ts": 1767571200}]
        h = {"Idempotency-Key": "batch-42"}
        first = self.post(events, headers=h)
        second = self.post(events, headers=h)
        self.assertEqual(first[1], second[1])
        self.assertEqual(second[2].get("Idempotent-Replayed"), "true")
        self.post([{"user_id": "idem", "type": "app_open", "ts": 1767571300}])
        body = self.wait_total("idem", "app_open", 1)
        self.assertEqual(body["events_total"]["pay"], 1)

    def test_unknown_user_features_is_404_and_tenants_are_isolated(self):
        status, body = self.features("nobody")
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"))
        self.post([{"user_id": "shared", "type": "app_open", "ts": 1767571200}])
        self.wait_total("shared", "app_open", 1)
        status, t, _ = self.s.request("POST", "/v1/tenants", {"id": "other"}, key=self.k)
        status, body, _ = self.s.request("GET", "/v1/users/shared/features", key=t["api_key"])
        self.assertEqual(status, 404)

    def test_acknowledged_events_survive_kill9_once(self):
        for i in range(20):
            status, body, _ = self.post([{"user_id": "k9", "type": "app_open",
                                          "ts": 1767571200 + i}])
            self.assertEqual(status, 200)
        self.s.proc.send_signal(signal.SIGKILL)
        self.s.proc.wait(10)
        again = Server(data_dir=self.s.data_dir)
        try:
            body = self.wait_total("k9", "app_open", 20, server=again)
            time.sleep(0.3)
            status, body = self.features("k9", server=again)
            self.assertEqual(body["events_total"]["app_open"], 20)  # no loss, no duplicates
        finally:
            again.stop()
            again.cleanup()


    def test_stats_answer_the_same_after_kill9_and_a_clean_restart(self):
        """Windows and counts by local hour are partition state: checkpointed and replayed.

        Checkpoints run every 50 ms, so the kill lands after some events are in a
        checkpoint and others only in the log: the restart loads the one and
        replays the other."""
        self.s.stop()
        self.s.cleanup()
        conf = os.path.join(tempfile.mkdtemp(prefix="herald-conf-"), "fast.toml")
        with open(conf, "w") as f:
            f.write("[stream]\ncheckpoint_interval_ms = 50\n")
        self.s = Server(config=conf)
        self.k = k = self.s.admin_key
        status, _, _ = self.s.request("POST", "/v1/users", {"users": [
            {"id": "st-sh", "tz": "Asia/Shanghai"}, {"id": "st-ny", "tz": "America/New_York"}]},
            key=k)
        self.assertEqual(status, 200)
        events = []
        for i in range(30):
            user = "st-sh" if i % 3 else "st-ny"
            kind = ["sent", "delivered", "opened", "converted"][i % 4]
            events.append({"user_id": user, "type": kind, "ts": 1767571200 + 40 * i,
                           "message_id": "sm%d" % i, "account_id": "sa"})
        status, body, _ = self.post(events)
        self.assertEqual(body["accepted"], 30)
        self.wait_total("st-sh", "sent", 5)

        def stats(server):
            answers = []
            for path in ("/v1/stats/windows?size=1m", "/v1/stats/windows?size=1h",
                         "/v1/stats/hours"):
                st, b, _ = server.request("GET", path, key=k)
                self.assertEqual(st, 200, path)
                answers.append(b)
            return answers

        def settled(server):
            # The reads queue behind the applies; repeat until two answers agree.
            last = None
            deadline = time.time() + 10
            while time.time() < deadline:
                now = stats(server)
                if now == last:
                    return now
                last = now
                time.sleep(0.2)
            return last

        settled(self.s)
        time.sleep(0.5)  # every partition has checkpointed the first batch
        later = [{"user_id": "st-sh", "type": "sent", "ts": 1767571200 + 3600 + i,
                  "message_id": "late%d" % i, "account_id": "sa"} for i in range(5)]
        status, body, _ = self.post(later)
        self.assertEqual(body["accepted"], 5)
        before = settled(self.s)
        self.assertEqual(sum(w["sent"] for w in before[0]["windows"]), 13)
        self.assertEqual(sum(h["opened"] for h in before[2]["by_local_hour"]), 7)
        status, text, _ = self.s.request("GET", "/metrics")
        self.assertRegex(text, r"herald_stream_checkpoints_total [1-9]")
        self.s.proc.send_signal(signal.SIGKILL)
        self.s.proc.wait(10)
        again = Server(data_dir=self.s.data_dir)
        try:
            self.assertEqual(settled(again), before)
        finally:
            self.assertEqual(again.stop(), 0)
        third = Server(data_dir=self.s.data_dir)  # from the clean stop's checkpoint alone
        try:
            self.assertEqual(settled(third), before)
        finally:
            third.stop()
            third.cleanup()


class VirtualClockWindowsTest(unittest.TestCase):
    """Window and calendar boundaries, driven by the virtual clock, across time zones."""

    def test_local_day_and_window_boundaries(self):
        s = Server("--virtual-clock")
        try:
            k = s.admin_key
            status, _, _ = s.request("POST", "/v1/users", {"users": [
                {"id": "sh", "tz": "Asia/Shanghai"}, {"id": "ny", "tz": "America/New_York"}]},
                key=k)
            self.assertEqual(status, 200)
            events = [
                # 23:59:59 on Monday 5 Jan in Shanghai, then midnight of Tuesday 6 Jan there.
                {"user_id": "sh", "type": "sent", "ts": "2026-01-05T15:59:59Z",
                 "account_id": "a1", "message_id": "m1"},
                {"user_id": "sh", "type": "sent", "ts": "2026-01-05T16:00:00Z",
                 "account_id": "a1", "message_id": "m2"},
                # Midnight of Monday 5 Jan in New York.
                {"user_id": "ny", "type": "sent", "ts": "2026-01-05T05:00:00Z",
                 "account_id": "a1", "message_id": "m3"},
            ]
            status, body, _ = s.request("POST", "/v1/events", events, key=k)
            self.assertEqual(body["accepted"], 3)
            status, _, _ = s.request("POST", "/v1/admin/clock", {"set": "2026-01-05T16:30:00Z"},
                                     key=k)
            self.assertEqual(status, 200)

            def features(user):
                deadline = time.time() + 10
                while time.time() < deadline:
                    st, b, _ = s.request("GET", "/v1/users/%s/features" % user, key=k)
                    if st == 200 and b["events_total"]["sent"] >= 1:
                        return b
                    time.sleep(0.05)
                self.fail("no features for " + user)

            sh = features("sh")
            self.assertEqual(sh["events_total"]["sent"], 2)
            sends = {a["account_id"]: a for a in sh["sends_by_account"]}["a1"]
            # Now is 00:30 on Tuesday in Shanghai: one send today, two this week and month.
            self.assertEqual((sends["day"], sends["week"], sends["month"]), (1, 2, 2))
            self.assertEqual(sh["pushes"]["sent_by_hour"][23], 1)
            self.assertEqual(sh["pushes"]["sent_by_hour"][0], 1)
            ny = features("ny")
            sends = {a["account_id"]: a for a in ny["sends_by_account"]}["a1"]
            self.assertEqual(sends["day"], 1)  # 11:30 on Monday in New York
            self.assertEqual(ny["pushes"]["sent_by_hour"][0], 1)

            st, minutes, _ = s.request("GET", "/v1/stats/windows?size=1m", key=k)
            got = {w["start"]: w["sent"] for w in minutes["windows"]}
            self.assertEqual(got, {"2026-01-05T05:00:00Z": 1, "2026-01-05T15:59:00Z": 1,
                                   "2026-01-05T16:00:00Z": 1})
            st, hours, _ = s.request("GET", "/v1/stats/windows?size=1h", key=k)
            got = {w["start"]: w["sent"] for w in hours["windows"]}
            self.assertEqual(got, {"2026-01-05T05:00:00Z": 1, "2026-01-05T15:00:00Z": 1,
                                   "2026-01-05T16:00:00Z": 1})
            st, local, _ = s.request("GET", "/v1/stats/hours", key=k)
            self.assertEqual([h["sent"] for h in local["by_local_hour"]][:1], [2])  # sh + ny at 00
            self.assertEqual(local["by_local_hour"][23]["sent"], 1)
            st, body, _ = s.request("GET", "/v1/stats/windows?size=2m", key=k)
            self.assertEqual(st, 400)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
