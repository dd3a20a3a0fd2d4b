"""Black-box tests of slot arbitration on the virtual clock, with real MQTT devices:

- contention: an organic push and an ad due for the same user at 09:00 local; the
  higher value wins, the other is deferred a slot gap (explained in the user's
  decisions); an acceleration pack changes who wins; a user at the daily cap gets
  neither, pack or not;
- a paced ad campaign over a whole budget day under steady traffic: the spend at
  18:00 local is below the budget, it never passes it, and after a kill -9 at noon
  the spend equals the sum of the charges of the delivered impressions (nothing
  charged twice).
"""
import os
import queue
import shutil
import signal
import sys
import tempfile
import time
import unittest

from harness import Devices, Server, local_iso

START = "2026-03-01T16:00:00Z"  # 00:00 on 2 March in Shanghai


class AdsTest(unittest.TestCase):
    def start(self, extra=""):
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        self.k = self.s.admin_key

    def setUp(self):
        self.conf_dir = tempfile.mkdtemp(prefix="herald-conf-")
        self.data_dir = tempfile.mkdtemp(prefix="herald-bb-ads-")
        self.conf = os.path.join(self.conf_dir, "ads.toml")
        self.s = None
        self.devices = None

    def write_conf(self, text):
        with open(self.conf, "w") as f:
            f.write('[server]\nvirtual_clock_start = "%s"\n[stream]\ncheckpoint_interval_ms = 50\n' % START + text)

    def tearDown(self):
        if self.devices:
            self.devices.close()
        if self.s:
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

    def users(self, ids):
        self.ok("POST", "/v1/users", {"users": [{"id": u, "tz": "Asia/Shanghai"} for u in ids]})

    def follow(self, ids, account):
        self.ok("POST", "/v1/follows", {"follows": [
            {"user_id": u, "account_id": account, "followed_at": "2026-02-01T00:00:00Z"} for u in ids]})

    def campaign(self, body):
        c = self.ok("POST", "/v1/campaigns", body, 201)
        deadline = time.time() + 20
        while time.time() < deadline:
            c = self.ok("GET", "/v1/campaigns/" + c["id"])
            if c["status"] != "planning":
                return c
            time.sleep(0.05)
        self.fail("campaign still planning: %s" % c)

    def set_clock(self, iso):
        self.ok("POST", "/v1/admin/clock", {"set": iso})

    def arrivals(self, want, timeout=10):
        """Waits until `want` pushes arrived (or the timeout); returns them."""
        out = []
        deadline = time.time() + timeout
        while len(out) < want and time.time() < deadline:
            try:
                out.append(self.devices.q.get(timeout=0.1))
            except queue.Empty:
                pass
        return out

    def decisions(self, user):
        return self.ok("GET", "/v1/users/%s/decisions?limit=50" % user)["decisions"]

    def test_the_higher_value_wins_the_slot_a_pack_changes_the_winner_and_caps_hold(self):
        self.write_conf('[policy]\nquiet_start = "00:00"\nquiet_end = "00:00"\ndaily_cap = 2\nsteady_per_day = 2\n'
                        "[engine]\nslot_gap_s = 3600\n")
        self.start()
        self.ok("POST", "/v1/accounts", {"id": "news", "type": "business", "name": "News"})
        self.ok("POST", "/v1/accounts", {"id": "shop", "type": "ad", "name": "Shop"})
        self.ok("POST", "/v1/accounts", {"id": "cheap", "type": "ad", "name": "Cheap"})
        self.ok("POST", "/v1/accounts", {"id": "boost", "type": "ad", "name": "Boost", "pack": {
            "factor": 3, "from": "2026-03-01T00:00:00Z", "to": "2026-03-10T00:00:00Z"}})
        self.users(["u1", "u2", "u3"])
        self.follow(["u1", "u2", "u3"], "news")
        self.devices = Devices(self)
        for u in ("u1", "u2", "u3"):
            self.devices.add(u)
        # u3 has used the day's cap of 2 already.
        for i in range(2):
            r = self.ok("POST", "/v1/push", {"user_id": "u3", "account_id": "news", "message": {"title": "early %d" % i}})
            self.assertEqual(r["decision"], "allow", r)
        self.assertEqual(len(self.arrivals(2)), 2)
        at9 = {"type": "at", "local_time": "09:00"}
        news = self.campaign({"account_id": "news", "target": {"users": ["u1", "u2", "u3"]},
                              "message": {"title": "Morning news"}, "schedule": at9})
        shop = self.campaign({"account_id": "shop", "target": {"users": ["u1"]}, "bid": 0.5, "budget": 100,
                              "message": {"title": "Shoes on sale"}, "schedule": at9})
        boost = self.campaign({"account_id": "boost", "target": {"users": ["u2", "u3"]}, "bid": 0.5, "budget": 100,
                               "message": {"title": "Boosted"}, "schedule": at9})
        # A third candidate for u1 whose message lives 30 minutes: it loses, and is
        # dropped, since the next slot is an hour away.
        cheap = self.campaign({"account_id": "cheap", "target": {"users": ["u1"]}, "bid": 0.1, "budget": 100,
                               "message": {"title": "Last minute", "ttl_s": 1800}, "schedule": at9})
        self.assertEqual(shop["bid"], 0.5)
        self.assertEqual(shop["budget"], 100)
        # u3 is at the cap for the day: suppressed as planned (the cap holds till midnight).
        self.assertEqual(news["funnel"]["scheduled"], 2)
        self.assertEqual(news["funnel"]["suppressed"], {"daily_cap": 1})
        self.assertEqual(boost["funnel"]["suppressed"], {"daily_cap": 1})

        # 09:00: one push per user. An ad at half the organic value per click loses
        # (0.5 x pCTR x 1000 against 1 x pCTR x 1000); with a 3x pack it wins (1.5).
        self.set_clock(local_iso(9))
        got = self.arrivals(2)
        self.assertEqual(sorted((u, p["account_id"]) for u, p in got), [("u1", "news"), ("u2", "boost")])
        self.assertEqual(self.arrivals(1, timeout=1.5), [])  # u3: nothing past the cap
        d1 = [d for d in self.decisions("u1") if d["account_id"] == "shop"]
        self.assertEqual(d1[0]["rule"], "contention", d1)
        self.assertEqual(d1[0]["decision"], "defer")
        self.assertEqual(d1[0]["until"], local_iso(10))
        self.assertIn("lost the user's slot to a push of higher value", d1[0]["explanation"])
        self.assertEqual(d1[0]["contention"]["candidates"], 3)
        self.assertAlmostEqual(d1[0]["contention"]["value"] * 2, d1[0]["contention"]["winner_value"])
        dc = [d for d in self.decisions("u1") if d["account_id"] == "cheap"]
        self.assertEqual((dc[0]["rule"], dc[0]["decision"]), ("contention", "suppress"), dc)
        self.assertIn("expires", dc[0]["explanation"])
        self.assertEqual(self.ok("GET", "/v1/campaigns/" + cheap["id"])["funnel"]["suppressed"], {"contention": 1})
        d2 = [d for d in self.decisions("u2") if d["account_id"] == "news"]
        self.assertEqual(d2[0]["rule"], "contention", d2)
        d3 = [d for d in self.decisions("u3") if d["account_id"] in ("news", "boost") and d["rule"] != "allowed"]
        self.assertEqual(sorted(d["rule"] for d in d3), ["daily_cap", "daily_cap"], d3)

        # 10:00, a slot gap later: each loser is sent alone; u3 still gets nothing.
        self.set_clock(local_iso(10))
        got = self.arrivals(2)
        self.assertEqual(sorted((u, p["account_id"]) for u, p in got), [("u1", "shop"), ("u2", "news")])
        self.assertEqual(self.arrivals(1, timeout=1.5), [])
        self.assertEqual([p["account_id"] for p in self.devices.got["u3"]], ["news", "news"])

        # Alone in its auction, the ad paid the reserve price per click.
        shop_push = [p for p in self.devices.got["u1"] if p["account_id"] == "shop"][0]
        deadline = time.time() + 10
        while time.time() < deadline:
            m = self.ok("GET", "/v1/messages/" + shop_push["id"])
            if m["outcome"] == "delivered":
                break
            time.sleep(0.05)
        self.assertEqual(m["outcome"], "delivered", m)
        self.assertAlmostEqual(m["price"], 0.01)
        self.assertAlmostEqual(m["charge"], 0.01 * m["pctr"], places=6)
        deadline = time.time() + 10
        while time.time() < deadline:
            f = self.ok("GET", "/v1/campaigns/" + shop["id"])["funnel"]
            if f["impressions"] == 1:
                break
            time.sleep(0.05)
        self.assertEqual(f["impressions"], 1, f)
        self.assertAlmostEqual(f["spend"], m["charge"], places=6)
        self.assertAlmostEqual(f["avg_price"], 0.01, places=6)
        self.assertAlmostEqual(f["ecpm"], m["charge"] * 1000, places=3)
        metrics = self.s.request("GET", "/metrics")[1]
        self.assertIn('herald_engine_contention_total{outcome="deferred"} 2', metrics)
        self.assertIn('herald_engine_contention_total{outcome="dropped"} 1', metrics)
        self.assertNotIn("cheap", [p["account_id"] for ps in self.devices.got.values() for p in ps])

    def test_a_paced_budget_lasts_the_day_and_spend_survives_kill9(self):
        users = ["p%02d" % i for i in range(60)]
        self.write_conf('[policy]\nquiet_start = "00:00"\nquiet_end = "00:00"\ndaily_cap = 100\n'
                        "[engine]\nslot_gap_s = 1800\n[ads]\nreserve_price = 1.0\n")
        self.start()
        self.ok("POST", "/v1/accounts", {"id": "shop", "type": "ad", "name": "Shop"})
        self.users(users)
        self.devices = Devices(self)
        for u in users:
            self.devices.add(u)
        # Alone in each auction, every impression pays the reserve (1.0 per click):
        # a charge of pCTR, 0.5%..6.8% by the hour. Unpaced, the 60 impressions
        # would cost about 2.4 in the first hour; the budget is 0.6.
        budget = 0.6
        c = self.campaign({"account_id": "shop", "target": {"users": users}, "bid": 2.0, "budget": budget,
                           "message": {"title": "Shoes", "ttl_s": 86400}})
        cid = c["id"]

        def funnel():
            return self.ok("GET", "/v1/campaigns/" + cid)["funnel"]

        def settle():
            # Until the impressions stop changing (deliveries and their events land).
            last, stable = None, 0
            deadline = time.time() + 10
            while time.time() < deadline and stable < 2:
                f = funnel()
                key = (f["impressions"], f["sent"], f["spend"])
                stable = stable + 1 if key == last else 0
                last = key
                time.sleep(0.1)
            return funnel()

        spent = []
        restarted = False
        for step in range(1, 48):  # every 30 minutes to 23:30
            hour, minute = divmod(step * 30, 60)
            self.set_clock(local_iso(hour, minute))
            if (hour, minute) == (12, 0) and not restarted:
                # kill -9 in the middle of the day, while the noon firing's pushes
                # are being sent and delivered, then on from the same data.
                time.sleep(0.02)
                self.s.stop(sig=signal.SIGKILL)
                self.devices.close()
                self.start()
                self.devices.reconnect_all()
                restarted = True
                settle()
                self.check_spend_is_the_delivered_charges(cid)
            f = settle()
            spent.append(((hour, minute), f["spend"]))
            self.assertLessEqual(f["spend"], budget + 1e-9, spent)
            if (hour, minute) == (18, 0):
                at18 = f["spend"]
        self.assertTrue(restarted)
        print("spend by local time:", " ".join("%02d:%02d=%.3f" % (h, m, v) for (h, m), v in spent[1::4]),
              file=sys.stderr)
        self.assertLess(at18, budget, spent)
        final = settle()
        self.assertLessEqual(final["spend"], budget + 1e-9)
        self.assertGreater(final["spend"], 0.5 * budget, spent)  # paced, not starved
        self.assertLess(final["impressions"], len(users))
        self.check_spend_is_the_delivered_charges(cid)

    def check_spend_is_the_delivered_charges(self, cid):
        """The funnel's spend is the sum of the charges of the delivered pushes the
        devices saw, each once."""
        deadline = time.time() + 20
        while True:
            ids = sorted({p["id"] for ps in self.devices.got.values() for p in ps})
            total, delivered = 0.0, 0
            for mid in ids:
                m = self.ok("GET", "/v1/messages/" + mid)
                if m["outcome"] == "delivered":
                    total += m["charge"]
                    delivered += 1
            f = self.ok("GET", "/v1/campaigns/" + cid)["funnel"]
            if (abs(f["spend"] - total) < 1e-6 and f["impressions"] == delivered) or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(f["impressions"], delivered, f)
        self.assertAlmostEqual(f["spend"], total, places=6)


if __name__ == "__main__":
    unittest.main()
