"""Black-box tests of `herald model eval-ctr`: both formats on synthetic data with
a known signal, one answer line, and bad input named with its line number."""
import math
import os
import random
import re
import shutil
import tempfile
import time
import unittest

from harness import Server, run_herald

LINE = re.compile(r"^auc=([0-9.]+) logloss=([0-9.]+) model=(lr|fm) train=(\d+) test=(\d+) ")


def synthetic(n, seed):
    """Rows of (label, a, b, c): a and b shift the odds, c is noise."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b, c = rng.randrange(10), rng.randrange(10), rng.randrange(50)
        logit = -1.5 + 1.0 * (a - 4.5) + 0.6 * (b - 4.5)
        y = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
        rows.append((y, a, b, c))
    return rows


class EvalCtrTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="herald-model-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def libfm(self, rows):
        return "".join("%s %d:1 %d:1 %d:1\n" % ("+1" if y else "-1", a, 10 + b, 20 + c) for y, a, b, c in rows)

    def csv(self, rows):
        return "click,a,b,c\n" + "".join("%d,%d,%d,%d\n" % r for r in rows)

    def test_both_formats_and_models_find_the_signal(self):
        train, test = synthetic(20000, 1), synthetic(5000, 2)
        for fmt, render in (("libfm", self.libfm), ("svmlight", self.libfm), ("csv", self.csv)):
            tr = self.write("train." + fmt, render(train))
            te = self.write("test." + fmt, render(test))
            for model in ("lr", "fm"):
                code, out, err = run_herald("model", "eval-ctr", "--train", tr, "--test", te,
                                            "--format", fmt, "--model", model, "--epochs", "2",
                                            timeout=120)
                self.assertEqual(code, 0, err)
                lines = out.strip().splitlines()
                self.assertEqual(len(lines), 1, out)
                m = LINE.match(lines[0])
                self.assertTrue(m, lines[0])
                auc, logloss = float(m.group(1)), float(m.group(2))
                self.assertGreater(auc, 0.85, (fmt, model, lines[0]))
                self.assertLess(logloss, 0.5, (fmt, model, lines[0]))
                self.assertEqual((m.group(4), m.group(5)), ("20000", "5000"))

    def test_bad_input_names_the_line(self):
        good = self.write("good.libfm", "1 1:1\n0 2:1\n")
        cases = [
            (self.write("bad1.libfm", "1 1:1\n7 2:1\n"), "libfm", ":2: label must be 0, 1, -1 or +1"),
            (self.write("bad2.libfm", "1 1:1\n1 oops\n"), "libfm", ":2: bad feature"),
            (self.write("empty.libfm", ""), "libfm", "no samples"),
            (self.write("bad.csv", "click,a\n1,x\n2,y\n"), "csv", ":3: label must be 0 or 1"),
        ]
        for path, fmt, want in cases:
            code, _, err = run_herald("model", "eval-ctr", "--train", path, "--test", good,
                                      "--format", fmt)
            self.assertNotEqual(code, 0)
            self.assertIn(want, err)
        code, _, err = run_herald("model", "eval-ctr", "--train", good, "--test", good, "--format", "xml")
        self.assertEqual(code, 2)
        self.assertIn("--format", err)


class TrainTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="herald-train-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_daily_versions_promote_when_not_worse_and_roll_back(self):
        def day(seed):
            path = os.path.join(self.dir, "day%d.libfm" % seed)
            with open(path, "w") as f:
                for y, a, b, c in synthetic(5000, seed):
                    f.write("%d %d:1 %d:1 %d:1\n" % (y, a, 10 + b, 20 + c))
            return path
        data = os.path.join(self.dir, "data")
        for seed in (11, 12):
            code, out, err = run_herald("train", "--data-dir", data, "--samples", day(seed), timeout=120)
            self.assertEqual(code, 0, err)
            self.assertIn("promoted=yes", out)
        code, out, err = run_herald("model", "list", "--data-dir", data)
        self.assertEqual(code, 0, err)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 2, out)
        self.assertTrue(lines[1].startswith("* v2"), out)
        code, out, err = run_herald("model", "rollback", "--data-dir", data)
        self.assertEqual(code, 0, err)
        self.assertTrue(out.splitlines()[0].startswith("* v1"), out)
        code, out, err = run_herald("model", "promote", "7", "--data-dir", data)
        self.assertEqual(code, 1)
        self.assertIn("no model version 7", err)
        # A damaged snapshot is refused; the version in service stays.
        snap = os.path.join(data, "models", "ctr", "v000002.hmdl")
        with open(snap, "r+b") as f:
            f.truncate(100)
        code, out, err = run_herald("model", "promote", "2", "--data-dir", data)
        self.assertEqual(code, 1)
        self.assertIn("checksum", err)
        code, out, err = run_herald("model", "list", "--data-dir", data)
        self.assertTrue(out.splitlines()[0].startswith("* v1"), out)

        # The same through the API of a node serving that data directory.
        s = Server(data_dir=data)
        try:
            k = s.admin_key
            st, body, _ = s.request("GET", "/v1/models", key=k)
            self.assertEqual(st, 200, body)
            ctr = body["models"][0]
            self.assertEqual((ctr["name"], ctr["current"], len(ctr["versions"])), ("ctr", 1, 2))
            st, body, _ = s.request("POST", "/v1/models/ctr/promote", {"version": 2}, key=k)
            self.assertEqual(st, 409, body)  # the damaged snapshot
            self.assertIn("checksum", body["error"]["message"])
            st, body, _ = s.request("POST", "/v1/models/ctr/promote", {"version": "x"}, key=k)
            self.assertEqual(st, 400, body)
            st, body, _ = s.request("POST", "/v1/models/nope/rollback", key=k)
            self.assertEqual(st, 404, body)
            st, body, _ = s.request("POST", "/v1/models/ctr/rollback", key=k)
            self.assertEqual(st, 409, body)  # nothing before v1 in the history
        finally:
            s.stop()
            s.cleanup()


class DailyTrainingTest(unittest.TestCase):
    def test_serve_trains_the_waiting_samples_at_the_configured_local_time(self):
        base = tempfile.mkdtemp(prefix="herald-daily-")
        try:
            data = os.path.join(base, "data")
            conf = os.path.join(base, "c.toml")
            with open(conf, "w") as f:
                f.write('[server]\nvirtual_clock_start = "2026-03-01T00:00:00Z"\n'
                        '[model]\ntraining_time = "03:00"\ntraining_tz = "Asia/Shanghai"\n')
            s = Server("--virtual-clock", data_dir=data, config=conf)
            try:
                k = s.admin_key
                samples = os.path.join(data, "models", "samples")
                with open(os.path.join(samples, "2026-03-01.libfm"), "w") as f:
                    for y, a, b, c in synthetic(3000, 21):
                        f.write("%d %d:1 %d:1 %d:1\n" % (y, a, 10 + b, 20 + c))
                with open(os.path.join(samples, "broken.libfm"), "w") as f:
                    f.write("1 1:1\n9 2:1\n")

                def versions():
                    st, body, _ = s.request("GET", "/v1/models", key=k)
                    self.assertEqual(st, 200, body)
                    return body["models"][0]
                # 03:00 in Shanghai is 19:00 UTC the day before: the clock starts at 08:00 there.
                s.request("POST", "/v1/admin/clock", {"set": "2026-03-01T18:59:59Z"}, key=k)
                time.sleep(0.3)
                self.assertEqual(versions()["versions"], [])
                s.request("POST", "/v1/admin/clock", {"set": "2026-03-01T19:00:01Z"}, key=k)
                deadline = time.time() + 20
                while time.time() < deadline and not versions()["versions"]:
                    time.sleep(0.1)
                m = versions()
                self.assertEqual((m["current"], len(m["versions"])), (1, 1), m)
                done_dir = os.path.join(samples, "done")
                while time.time() < deadline and len(os.listdir(done_dir)) < 2:
                    time.sleep(0.1)
                self.assertEqual(sorted(os.listdir(done_dir)), ["2026-03-01.libfm", "broken.libfm.bad"])
            finally:
                s.stop()
                s.cleanup()
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
