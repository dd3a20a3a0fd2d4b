"""Black-box test of the learning loop on the virtual clock: every push the engine
sends is scored by the CTR model (the source's hourly open rate before any model),
its feature vector goes with it into the log, and once its open window closes the
vector is written as a sample labelled by the receipts; the next night's training
learns from those samples, and the pushes after it are scored by the new version."""
import glob
import os
import shutil
import tempfile
import time
import unittest

from harness import Server


class LearningLoopTest(unittest.TestCase):
    def setUp(self):
        self.conf_dir = tempfile.mkdtemp(prefix="herald-conf-")
        self.conf = os.path.join(self.conf_dir, "learn.toml")
        with open(self.conf, "w") as f:
            f.write('[server]\nvirtual_clock_start = "2026-03-02T02:00:00Z"\n'
                    "[stream]\ncheckpoint_interval_ms = 50\n"
                    '[policy]\nquiet_start = "00:00"\nquiet_end = "00:00"\ndaily_cap = 100\n'
                    '[model]\nsample_window_s = 3600\ntraining_time = "03:00"\ntraining_tz = "UTC"\n')
        self.data_dir = tempfile.mkdtemp(prefix="herald-bb-learn-")
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        self.k = self.s.admin_key

    def tearDown(self):
        self.s.cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.conf_dir, ignore_errors=True)
        try:
            os.remove(self.data_dir + ".privacy.key")
        except OSError:
            pass

    def ok(self, method, path, body=None, status=200):
        got, answer = self.s.request(method, path, body, key=self.k)[:2]
        self.assertEqual(got, status, (path, answer))
        return answer

    def wait(self, what, check, timeout=20):
        deadline = time.time() + timeout
        while True:
            got = check()
            if got or time.time() > deadline:
                self.assertTrue(got, what)
                return got
            time.sleep(0.05)

    def metric(self, name):
        text = self.s.request("GET", "/metrics")[1]
        text = text if isinstance(text, str) else str(text)
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def push(self, user, title="Morning news"):
        answer = self.ok("POST", "/v1/push", {"user_id": user, "account_id": "news",
                                              "message": {"title": title, "body": "b"}})
        self.assertEqual(answer["decision"], "allow", answer)
        return answer["message_id"]

    def message(self, mid, want):
        box = {}

        def check():
            status, m = self.s.request("GET", "/v1/messages/" + mid, key=self.k)[:2]
            box["m"] = m
            return status == 200 and want(m)
        self.wait("message " + mid, check)
        return box["m"]

    def test_pushes_are_scored_logged_as_samples_and_train_the_next_model(self):
        self.ok("POST", "/v1/accounts", {"id": "news", "type": "business", "name": "News"})
        users = ["u%03d" % i for i in range(120)]
        self.ok("POST", "/v1/users", {"users": [
            {"id": u, "tz": "Asia/Shanghai", "profile": {"os": "ios" if i % 2 == 0 else "android"}}
            for i, u in enumerate(users)]})
        self.ok("POST", "/v1/follows", {"follows": [
            {"user_id": u, "account_id": "news", "followed_at": "2026-03-01T01:00:00Z"} for u in users]})
        mids = {u: self.push(u) for u in users}
        # Before any model: the source's rate at 10:00 in Shanghai, between 08-09's 6.8%
        # and 12-13's 5.1%.
        first = self.message(mids[users[0]], lambda m: m["sent_at"] is not None)
        self.assertEqual(first["model_version"], 0, first)
        self.assertAlmostEqual(first["pctr"], 0.0595, places=3)
        # The iOS users open theirs within the hour; the Android users never do.
        opened = [u for i, u in enumerate(users) if i % 2 == 0]
        answer = self.ok("POST", "/v1/events", [
            {"user_id": u, "type": "opened", "ts": "2026-03-02T02:20:00Z", "message_id": mids[u]} for u in opened])
        self.assertEqual(answer["accepted"], len(opened), answer)
        self.message(mids[opened[-1]], lambda m: m["receipts"])
        # An hour on, the window closes: each push is one sample, labelled by its receipts.
        self.ok("POST", "/v1/admin/clock", {"set": "2026-03-02T03:30:00Z"})
        self.wait("samples written", lambda: self.metric("herald_engine_samples_total") >= len(users))
        open_dir = os.path.join(self.data_dir, "models", "samples", "open")
        lines = []
        for path in glob.glob(os.path.join(open_dir, "20260302-p*.hsv")):
            with open(path) as f:
                lines += f.read().splitlines()
        self.assertEqual(len(lines), len(users), lines[:3])
        self.assertEqual(sum(1 for l in lines if l.startswith("1 ")), len(opened))
        # Every sample carries the vector that was scored (the same indices as the record's).
        for l in lines:
            self.assertGreaterEqual(len(l.split()), 15, l)
        # After midnight the day's files go to the trainer; at 03:00 it trains version 1.
        self.ok("POST", "/v1/admin/clock", {"set": "2026-03-03T00:10:00Z"})
        samples_dir = os.path.join(self.data_dir, "models", "samples")
        self.wait("the day's files handed over",
                  lambda: glob.glob(os.path.join(samples_dir, "20260302-p*.hsv"))
                  and not glob.glob(os.path.join(open_dir, "20260302-p*.hsv")))
        self.ok("POST", "/v1/admin/clock", {"set": "2026-03-03T03:10:00Z"})

        def trained():
            models = self.ok("GET", "/v1/models")["models"]
            return models[0]["current"] >= 1
        self.wait("version 1 in service", trained, timeout=30)
        self.wait("the day's files trained", lambda: glob.glob(os.path.join(samples_dir, "done", "20260302-p*.hsv"))
                  and not glob.glob(os.path.join(samples_dir, "20260302-p*.hsv")))
        versions = self.ok("GET", "/v1/models")["models"][0]["versions"]
        self.assertEqual([v["version"] for v in versions], [1], versions)  # the day's files train one version
        self.assertEqual(versions[0]["samples"] + 12, len(users), versions)  # all but the 10% holdout
        # The next pushes are scored by it: an iOS user above an Android user.
        ios = self.message(self.push(users[0], "Evening news"), lambda m: m["sent_at"] is not None)
        android = self.message(self.push(users[1], "Evening news"), lambda m: m["sent_at"] is not None)
        self.assertEqual(ios["model_version"], 1, ios)
        self.assertEqual(android["model_version"], 1, android)
        self.assertGreater(ios["pctr"], android["pctr"], (ios, android))


if __name__ == "__main__":
    unittest.main()
