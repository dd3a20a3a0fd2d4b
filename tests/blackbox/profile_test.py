"""Black-box tests of profiles and segments through the API on the virtual clock:
bulk upserts and GET /v1/users/{id}, classes that follow the clock, segment preview
and saved segments, windows by class, bad input, kill -9, and privacy by
construction: distinctive coordinates and item ids sent in events are nowhere under
the data directory or in the logs, after a checkpoint, a restart and a compaction."""
import os
import re
import shutil
import signal
import struct
import tempfile
import time
import unittest

from harness import Server

SH = "+08:00"
LAT, LNG = 12.3456789, 98.7654321        # distinctive coordinates
ITEM = "item-Zx9QuartzPelican"           # a distinctive item id


def ts(day, hh, mm=0):
    return "2026-03-%02dT%02d:%02d:00%s" % (day, hh, mm, SH)


class ProfileTest(unittest.TestCase):
    def setUp(self):
        self.conf_dir = tempfile.mkdtemp(prefix="herald-conf-")
        self.conf = os.path.join(self.conf_dir, "profile.toml")
        with open(self.conf, "w") as f:
            f.write('[server]\nvirtual_clock_start = "2026-03-01T00:00:00Z"\n'
                    "[stream]\ncheckpoint_interval_ms = 50\nallowed_lateness_s = 2592000\n")
        self.data_dir = tempfile.mkdtemp(prefix="herald-bb-profile-")
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        self.k = self.s.admin_key
        self.logs = ""

    def tearDown(self):
        self.s.cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.conf_dir, ignore_errors=True)
        try:
            os.remove(self.data_dir + ".privacy.key")
        except OSError:
            pass

    def req(self, method, path, body=None):
        return self.s.request(method, path, body, key=self.k)[:2]

    def ok(self, method, path, body=None, status=200):
        got, answer = self.req(method, path, body)
        self.assertEqual(got, status, (path, answer))
        return answer

    def events(self, evs):
        answer = self.ok("POST", "/v1/events", evs)
        self.assertEqual(answer["accepted"], len(evs), answer)

    def restart(self, sig=signal.SIGTERM):
        self.s.stop(sig)
        self.logs += "\n".join(self.s.stdout_lines) + "\n" + self.s.stderr
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)

    def eventually(self, fn, timeout=10):
        deadline = time.time() + timeout
        while True:
            value = fn()
            if value or time.time() > deadline:
                return value
            time.sleep(0.05)

    def user(self, uid):
        return self.ok("GET", "/v1/users/" + uid)

    def test_profiles_classes_segments_and_kill9(self):
        users = [
            {"id": "stu", "tz": "Asia/Shanghai",
             "profile": {"name": "Li Lei", "age": 19, "region": "Guangdong", "city": "Shenzhen",
                         "occupation": "student", "os": "android", "language": "zh-CN",
                         "friends": 120, "groups": ["g-study"], "group_features": {"g-study_size": 40}}},
            {"id": "exe", "tz": "Asia/Shanghai",
             "profile": {"age": 45, "region": "Beijing", "occupation": "executive", "os": "ios"}},
            {"id": "biz", "profile": {"age": 38, "region": "Guangdong", "occupation": "business"}},
            {"id": "new", "tz": "America/New_York", "profile": {"region": "New York"}},
        ]
        for i in range(200):
            users.append({"id": "bulk%d" % i, "profile": {"age": 18 + i % 50,
                                                          "region": ["Guangdong", "Sichuan"][i % 2]}})
        self.assertEqual(self.ok("POST", "/v1/users", {"users": users})["upserted"], len(users))
        self.events([{"user_id": "new", "type": "register", "ts": "2026-03-01T00:00:00Z"},
                     {"user_id": "stu", "type": "read", "ts": "2026-02-28T12:00:00Z",
                      "attrs": {"item": "a1", "tags": ["finance"]}},
                     {"user_id": "stu", "type": "follow", "ts": "2026-02-28T12:00:00Z", "account_id": "acct_42"}])

        stu = self.eventually(lambda: (lambda u: u if u["behaviour"]["reads"] == 1 else None)(self.user("stu")))
        self.assertEqual(stu["class"], "student")
        self.assertEqual(stu["tz"], "Asia/Shanghai")
        self.assertEqual(stu["profile"]["name"], "Li Lei")
        self.assertEqual(stu["profile"]["city"], "Shenzhen")
        self.assertEqual(stu["social"]["groups"], ["g-study"])
        self.assertEqual(stu["social"]["friends"], 120)
        self.assertEqual(self.user("exe")["class"], "executive")
        self.assertEqual(self.user("biz")["class"], "business")
        self.assertEqual(self.eventually(lambda: self.user("new")["class"] == "new_user"), True)

        # The example expression, on the shards.
        expr = ('class in (student, new_user) and age >= 18 and region = "Guangdong" '
                'and tag("finance") > 0.3 and last_active < 7d and follows("acct_42")')
        p = self.ok("POST", "/v1/segments/preview", {"expr": expr})
        self.assertEqual((p["count"], p["sample"]), (1, ["stu"]))
        p = self.ok("POST", "/v1/segments/preview", {"expr": 'region = "Guangdong" and age >= 40', "sample": 3})
        want = sum(1 for u in users if u["profile"].get("region") == "Guangdong" and u["profile"].get("age", 0) >= 40)
        self.assertEqual(p["count"], want)
        self.assertEqual(len(p["sample"]), 3)

        # Saved segments.
        self.ok("POST", "/v1/segments", {"name": "gd-adults", "expr": 'region = "Guangdong" and age >= 18'}, 201)
        self.assertEqual([s["name"] for s in self.ok("GET", "/v1/segments")["segments"]], ["gd-adults"])
        by_name = self.ok("POST", "/v1/segments/preview", {"segment": "gd-adults"})
        self.assertEqual(by_name["count"], sum(1 for u in users if u["profile"].get("region") == "Guangdong"
                                               and u["profile"].get("age", 0) >= 18))
        self.assertEqual(self.ok("GET", "/v1/segments/gd-adults")["expr"], 'region = "Guangdong" and age >= 18')

        # Classes follow the virtual clock: a day later "new" is no longer new.
        self.ok("POST", "/v1/admin/clock", {"advance_s": 25 * 3600})
        self.assertNotEqual(self.user("new")["class"], "new_user")
        classes = {c["class"]: c for c in self.ok("GET", "/v1/classes")["classes"]}
        self.assertEqual(len(classes), 12)
        self.assertEqual(classes["business"]["strategy"]["windows"], ["weekdays 10:00-11:30"])
        self.assertEqual(classes["student"]["users"], 1 + sum(1 for i in range(200) if 18 + i % 50 <= 22))

        # Push outcomes are counted per class as well as for all users.
        self.events([{"user_id": "exe", "type": "sent", "ts": "2026-03-02T01:00:00Z", "message_id": "m1",
                      "account_id": "a"}])
        rows = self.eventually(lambda: self.ok("GET", "/v1/stats/windows?size=1h&class=executive")["windows"])
        self.assertEqual(rows[0]["sent"], 1)
        self.assertEqual(rows[0]["class"], "executive")

        # kill -9: what was acknowledged is still there.
        self.ok("POST", "/v1/users", {"users": [{"id": "late", "profile": {"age": 77, "region": "Tibet"}}]})
        self.restart(signal.SIGKILL)
        self.assertEqual(self.user("late")["profile"]["age"], 77)
        self.assertEqual(self.user("stu")["social"]["groups"], ["g-study"])
        p = self.ok("POST", "/v1/segments/preview", {"expr": expr})
        self.assertEqual(p["count"], 1)
        self.assertEqual(self.ok("POST", "/v1/segments/preview", {"segment": "gd-adults"})["count"], by_name["count"])
        self.ok("DELETE", "/v1/segments/gd-adults")
        self.assertEqual(self.req("GET", "/v1/segments/gd-adults")[0], 404)

    def test_bad_input_gets_a_clear_400_and_the_server_keeps_serving(self):
        cases = [
            ({"users": [{"id": "u1", "profile": {"shoe_size": 42}}]}, "users[0].profile.shoe_size: unknown field"),
            ({"users": [{"id": "u1", "profile": {"age": -3}}]}, "users[0].profile.age: must be an integer"),
            ({"users": [{"id": "u1", "profile": {"region": 7}}]}, "users[0].profile.region: must be a string"),
            ({"users": [{"id": "u1", "tz": "Mars/Base"}]}, "users[0].tz: unknown time zone"),
            ({"users": [{"id": "u1"}, {"profile": {}}]}, "users[1].id: required string"),
        ]
        for body, message in cases:
            status, answer = self.req("POST", "/v1/users", body)
            self.assertEqual(status, 400, answer)
            self.assertTrue(answer["error"]["message"].startswith(message), answer)
        status, answer = self.req("POST", "/v1/users", "{not json")
        self.assertEqual((status, answer["error"]["code"]), (400, "invalid_json"))
        self.assertEqual(self.req("GET", "/v1/users/u1")[0], 404)  # nothing of the bad batches landed

        huge = " or ".join(['region = "x%d"' % i for i in range(6000)])  # about 100 KB
        self.assertGreater(len(huge), 100000)
        status, answer = self.req("POST", "/v1/segments/preview", {"expr": huge})
        self.assertEqual(status, 400, answer)
        self.assertEqual(answer["error"]["position"], 65536)
        deep = "(" * 10000 + "age > 1" + ")" * 10000
        status, answer = self.req("POST", "/v1/segments/preview", {"expr": deep})
        self.assertEqual(status, 400, answer)
        self.assertIn("deep", answer["error"]["message"])
        status, answer = self.req("POST", "/v1/segments/preview", {"expr": "age >= 18 and (region = "})
        self.assertEqual((status, answer["error"]["code"]), (400, "invalid_expression"))
        self.assertEqual(answer["error"]["position"], len("age >= 18 and (region = "))
        status, answer = self.req("POST", "/v1/segments", {"name": "bad", "expr": "age >>= 3"})
        self.assertEqual(status, 400, answer)
        self.assertIn("position", answer["error"])
        status, answer = self.req("POST", "/v1/segments/preview", {"expr": "age > 1", "colour": "red"})
        self.assertEqual((status, answer["error"]["code"]), (400, "unknown_field"))
        # Still serving, and a good request works.
        self.assertEqual(self.ok("POST", "/v1/users", {"users": [{"id": "u1", "profile": {"age": 30}}]})["upserted"], 1)
        self.assertEqual(self.user("u1")["profile"]["age"], 30)

    def test_no_coordinate_or_item_id_reaches_the_disk_or_the_logs(self):
        evs = []
        for i in range(20):
            evs.append({"user_id": "priv%d" % i, "type": "location", "ts": ts(1, 9, i),
                        "attrs": {"lat": LAT, "lng": LNG, "accuracy": 5}})
            evs.append({"user_id": "priv%d" % i, "type": "read", "ts": ts(1, 9, i),
                        "attrs": {"item": ITEM, "tags": ["news"]}})
        self.events(evs)
        # The location still serves near(): the cell is kept.
        near = self.eventually(lambda: self.ok("POST", "/v1/segments/preview",
                                               {"expr": "near(%f, %f, 1km)" % (LAT, LNG)})["count"] == 20)
        self.assertTrue(near)
        self.assertEqual(self.ok("POST", "/v1/segments/preview", {"expr": "near(40.0, -74.0, 50km)"})["count"], 0)
        user = self.user("priv3")
        self.assertTrue(user["behaviour"]["located"])
        self.assertNotIn("%.4f" % LAT, str(user))

        self.ok("POST", "/v1/admin/compact")          # checkpoint, retention, store compaction
        self.restart()                                  # a clean restart...
        self.ok("POST", "/v1/admin/compact")
        self.restart(signal.SIGKILL)                    # ...and a kill -9
        self.assertTrue(self.user("priv3")["behaviour"]["located"])
        self.s.stop()
        logs = self.logs + "\n".join(self.s.stdout_lines) + self.s.stderr

        needles = [ITEM.encode(), b"Zx9Quartz", b"12.3456", b"98.7654", b"12.345", b"98.765",
                   struct.pack("<d", LAT), struct.pack("<d", LNG)]
        found = []
        files = 0
        for root, _, names in os.walk(self.data_dir):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    data = f.read()
                files += 1
                for n in needles:
                    if n in data:
                        found.append((path, n))
        self.assertGreater(files, 5)
        self.assertEqual(found, [])
        # The secret that keys the item hashes is beside the data directory, not in it.
        with open(self.data_dir + ".privacy.key", "rb") as f:
            secret = f.read().strip()
        self.assertGreaterEqual(len(secret), 32)
        for root, _, names in os.walk(self.data_dir):
            for name in names:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(secret, f.read(), name)
        for n in needles[:6]:
            self.assertNotIn(n.decode(), logs)


if __name__ == "__main__":
    unittest.main()
