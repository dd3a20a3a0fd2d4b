"""Black-box test of the daily digest of subscription accounts on the virtual clock,
with real MQTT devices: three subscription accounts' articles reach each follower
in one push a day, at the user's golden hour (an evening user in the evening, a
morning user in the morning), listing the articles with their account, title and
deep link, best first by predicted CTR; the digest counts against the daily cap
(a user at the cap gets it the next day, and a push after it is capped); a user
with no articles gets none; an opened receipt names the article."""
import json
import os
import queue
import shutil
import tempfile
import time
import unittest

from harness import Devices, Server, local_iso

START = "2026-03-01T16:00:00Z"  # 00:00 on 2 March in Shanghai


class DigestTest(unittest.TestCase):
    def setUp(self):
        self.conf_dir = tempfile.mkdtemp(prefix="herald-conf-")
        self.data_dir = tempfile.mkdtemp(prefix="herald-bb-digest-")
        self.conf = os.path.join(self.conf_dir, "digest.toml")
        with open(self.conf, "w") as f:
            f.write('[server]\nvirtual_clock_start = "%s"\n[stream]\ncheckpoint_interval_ms = 50\n'
                    '[policy]\nquiet_start = "00:00"\nquiet_end = "00:00"\ndaily_cap = 1\n'
                    '[engine]\ndigest_from = "07:30"\ndigest_to = "22:00"\ndigest_max_articles = 2\n' % START)
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        self.k = self.s.admin_key
        self.devices = None

    def tearDown(self):
        if self.devices:
            self.devices.close()
        self.s.cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.conf_dir, ignore_errors=True)
        try:
            os.remove(self.data_dir + ".privacy.key")
        except OSError:
            pass

    def req(self, method, path, body=None):
        return self.s.request(method, path, body, key=self.k, timeout=30)[:2]

    def ok(self, method, path, body=None, status=200):
        got, answer = self.req(method, path, body)
        self.assertEqual(got, status, (path, answer))
        return answer

    def local_hour(self, iso):
        # sent_at is ISO-8601 UTC ("...Z"); Shanghai is UTC+8.
        return (int(iso[11:13]) + 8) % 24

    def test_one_digest_a_day_at_the_golden_hour_counted_against_the_cap(self):
        users = ["evening", "morning", "capped", "nobody", "unlucky"]
        self.ok("POST", "/v1/users", {"users": [{"id": u, "tz": "Asia/Shanghai"} for u in users]})
        # Ten days of history: "evening" opens the app at 20:10, "morning" at 08:40.
        events = []
        for day in range(19, 29):
            for user, hh, mm in (("evening", 12, 10), ("morning", 0, 40)):  # UTC
                events.append({"user_id": user, "type": "app_open", "ts": "2026-02-%02dT%02d:%02d:00Z" % (day, hh, mm)})
        events.sort(key=lambda e: e["ts"])
        self.assertEqual(self.ok("POST", "/v1/events", events)["accepted"], len(events))
        for a, title in (("food", "Food"), ("tech", "Tech"), ("travel", "Travel"), ("news", "News"),
                         ("gossip", "Gossip")):
            self.ok("POST", "/v1/accounts", {"id": a, "type": "business" if a == "news" else "subscription",
                                             "name": title})
        self.ok("POST", "/v1/follows", {"follows": [
            {"user_id": u, "account_id": a, "followed_at": "2026-02-01T00:00:00Z"}
            for u in ("evening", "morning", "capped") for a in ("food", "tech", "travel", "news")] +
            [{"user_id": "unlucky", "account_id": "gossip", "followed_at": "2026-02-01T00:00:00Z"}]})
        self.devices = Devices(self)
        for u in users:
            self.devices.add(u)
        # "capped" uses its one push of the day at once.
        r = self.ok("POST", "/v1/push", {"user_id": "capped", "account_id": "news", "message": {"title": "early"}})
        self.assertEqual(r["decision"], "allow", r)

        campaigns = {}
        for a, title in (("food", "Hand-pulled noodles"), ("tech", "A new chip"), ("travel", "Quiet beaches")):
            c = self.ok("POST", "/v1/campaigns", {
                "account_id": a, "target": {"followers_of": a}, "schedule": {"type": "digest"},
                "message": {"title": title, "deep_link": "app://%s/1" % a, "ttl_s": 3 * 86400}}, 201)
            deadline = time.time() + 20
            while c["status"] == "planning" and time.time() < deadline:
                time.sleep(0.05)
                c = self.ok("GET", "/v1/campaigns/" + c["id"])
            self.assertEqual(c["status"], "scheduled", c)
            self.assertEqual(c["funnel"]["scheduled"], 3, c)  # an article for each follower
            campaigns[c["id"]] = (a, title)
        # "unlucky" follows only an account whose digest campaign is cancelled: its
        # entry fires and finds no article.
        g = self.ok("POST", "/v1/campaigns", {"account_id": "gossip", "target": {"followers_of": "gossip"},
                                              "schedule": {"type": "digest"}, "message": {"title": "Rumours"}}, 201)
        deadline = time.time() + 20
        while self.ok("GET", "/v1/campaigns/" + g["id"])["status"] == "planning" and time.time() < deadline:
            time.sleep(0.05)
        self.ok("POST", "/v1/campaigns/%s/cancel" % g["id"])

        # Through the day, every half hour.
        arrivals = {}
        for step in range(1, 48):
            hour, minute = divmod(step * 30, 60)
            self.set_clock(local_iso(hour, minute))
            deadline = time.time() + 0.3
            while time.time() < deadline:
                try:
                    user, p = self.devices.q.get(timeout=0.05)
                    arrivals.setdefault(user, []).append(p)
                except queue.Empty:
                    pass
        time.sleep(0.5)
        while not self.devices.q.empty():
            user, p = self.devices.q.get()
            arrivals.setdefault(user, []).append(p)

        digests = {u: [p for p in ps if p["form"] == "digest"] for u, ps in arrivals.items()}
        self.assertEqual(len(digests.get("evening", [])), 1, arrivals)
        self.assertEqual(len(digests.get("morning", [])), 1, arrivals)
        self.assertNotIn("nobody", arrivals)  # no articles: no digest
        self.assertNotIn("unlucky", arrivals)
        self.assertEqual([p["form"] for p in arrivals.get("capped", [])], ["text"])  # the early push only

        listed = {}
        for user in ("evening", "morning"):
            d = digests[user][0]
            self.assertEqual(d["account_id"], "digest")
            self.assertEqual(len(d["articles"]), 2)  # digest_max_articles; the third waits
            self.assertTrue(set(a["id"] for a in d["articles"]) < set(campaigns))
            listed[user] = set(a["id"] for a in d["articles"])
            for a in d["articles"]:
                account, title = campaigns[a["id"]]
                self.assertEqual((a["account_id"], a["title"], a["deep_link"]), (account, title, "app://%s/1" % account))
            m = self.ok("GET", "/v1/messages/" + d["id"])
            self.assertEqual(m["articles"], [a["id"] for a in d["articles"]])  # as listed: best first
            self.assertEqual(m["account_id"], "digest")
            d["local_hour"] = self.local_hour(m["sent_at"])
        # The golden hour: the evening user's around 20:00, the morning user's around 08:00.
        self.assertIn(digests["evening"][0]["local_hour"], range(18, 22), digests["evening"])
        self.assertIn(digests["morning"][0]["local_hour"], range(7, 11), digests["morning"])

        # The digest was the evening user's one push of the day: the next is capped.
        r = self.ok("POST", "/v1/push", {"user_id": "evening", "account_id": "news", "message": {"title": "late"}})
        self.assertEqual(r["rule"], "daily_cap", r)
        # The capped user's digest was held by the cap.
        capped = [d for d in self.ok("GET", "/v1/users/capped/decisions")["decisions"] if d["account_id"] == "digest"]
        self.assertEqual([d["rule"] for d in capped][:1], ["daily_cap"], capped)

        # An opened receipt names the article.
        d = digests["evening"][0]
        opened = d["articles"][1]["id"]
        c = self.devices.clients["evening"]
        c.publish("r/evening", json.dumps({"message_id": d["id"], "type": "opened", "article_id": opened}), qos=1)
        deadline = time.time() + 10
        while time.time() < deadline:
            m = self.ok("GET", "/v1/messages/" + d["id"])
            if m["receipts"]:
                break
            time.sleep(0.05)
        self.assertEqual([(r["type"], r.get("article_id")) for r in m["receipts"]], [("opened", opened)])

        # The article campaigns' funnels count the digests that listed them.
        sent = {cid: self.ok("GET", "/v1/campaigns/" + cid)["funnel"] for cid in campaigns}
        self.assertEqual(sum(f["sent"] for f in sent.values()), 4, sent)  # 2 digests x 2 articles
        self.assertEqual(sent[opened]["opened"], 1, sent)

        # The next day: the capped user's articles (living three days) waited for
        # it; the others get the one article left out of yesterday's.
        for step in range(0, 48):
            hour, minute = divmod(step * 30, 60)
            self.set_clock(local_iso(hour, minute, day=3))
            time.sleep(0.05)
        time.sleep(1)
        more = []
        while not self.devices.q.empty():
            more.append(self.devices.q.get())
        self.assertEqual(sorted((u, p["form"]) for u, p in more),
                         [("capped", "digest"), ("evening", "digest"), ("morning", "digest")], more)
        for user, p in more:
            if user == "capped":
                self.assertEqual(len(p["articles"]), 2)
            else:
                self.assertEqual([a["id"] for a in p["articles"]], sorted(set(campaigns) - listed[user]))

    def set_clock(self, iso):
        self.ok("POST", "/v1/admin/clock", {"set": iso})


if __name__ == "__main__":
    unittest.main()
