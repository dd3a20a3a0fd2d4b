"""Black-box tests of `herald simulate` (docs/simulation.md):

- calibration: blast's open rate by local hour matches the source's table at the
  table's hours, within tolerance;
- determinism: the same seed gives the same report.json, byte for byte;
- a small run through MQTT with faults (disconnects, devices offline for hours, a
  kill -9 of the server halfway): every push herald sent reached its device
  within its TTL, none lost across the restart;
- the report renders in headless Chromium without errors, and its screenshot
  shows the charts;
- bad flags get a clear error.
"""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

from harness import HERALD

SOURCE = {6: 0.032, 8: 0.068, 12: 0.051, 19: 0.047, 22: 0.021}


def simulate(*args, timeout=600):
    p = subprocess.run([HERALD, "simulate", "--quiet", *args], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of a non-interlaced 8-bit PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


class SimulateTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="herald-sim-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def report(self, name):
        with open(os.path.join(self.dir, name, "report.json")) as f:
            return json.load(f)

    def test_blast_open_rates_by_hour_match_the_sources_table(self):
        code, out, err = simulate("--users", "20000", "--days", "2", "--strategy", "blast", "--seed", "3",
                                  "--report", os.path.join(self.dir, "cal"))
        self.assertEqual(code, 0, err)
        s = self.report("cal")["strategies"]["blast"]
        for hour, rate in SOURCE.items():
            got = s["open_rate_by_hour"][hour]
            self.assertGreater(s["delivered_by_hour"][hour], 3000, hour)
            self.assertLess(abs(got / rate - 1), 0.3, "hour %d: %.4f against the source's %.3f" % (hour, got, rate))
        for key in ("open_rate", "ctr", "pushes_per_user_per_day", "uninstall_rate", "not_interested_rate",
                    "complaint_rate", "delivery_rate", "delivered_within_ttl_rate"):
            self.assertIsInstance(s[key], (int, float), key)

    def test_the_same_seed_gives_the_same_report_and_it_renders(self):
        runs = []
        for name in ("a", "b"):
            code, out, err = simulate("--users", "3000", "--days", "3", "--strategy", "blast,herald",
                                      "--seed", "11", "--report", os.path.join(self.dir, name))
            self.assertEqual(code, 0, err)
            with open(os.path.join(self.dir, name, "report.json"), "rb") as f:
                runs.append(f.read())
        self.assertEqual(runs[0], runs[1])
        code, _, _ = simulate("--users", "3000", "--days", "3", "--strategy", "blast,herald", "--seed", "12",
                              "--report", os.path.join(self.dir, "c"))
        self.assertEqual(code, 0)
        with open(os.path.join(self.dir, "c", "report.json"), "rb") as f:
            self.assertNotEqual(f.read(), runs[0])  # another seed, another run
        r = json.loads(runs[0])
        self.assertEqual(sorted(r["strategies"]), ["blast", "herald"])
        self.assertEqual(len(r["strategies"]["herald"]["by_class"]), 12)
        # Herald pushes less than blast.
        self.assertLess(r["strategies"]["herald"]["pushes_per_user_per_day"],
                        r["strategies"]["blast"]["pushes_per_user_per_day"])
        self.render(os.path.join(self.dir, "a"))

    def render(self, report_dir):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        self.assertIsNotNone(chromium, "chromium is installed by scripts/install-deps.sh")
        html = os.path.join(report_dir, "report.html")
        with open(html) as f:
            text = f.read()
        self.assertNotIn("<script", text)
        self.assertNotIn("http://", text.replace('xmlns="http://www.w3.org/2000/svg"', ""))
        self.assertNotIn("https://", text)
        shot = os.path.join(self.dir, "shot.png")
        profile = os.path.join(self.dir, "chromium-profile")
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0"]
        p = subprocess.run(args + ["--screenshot=" + shot, "--window-size=1280,1400", "file://" + html],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertTrue(os.path.exists(shot), p.stderr[-2000:])
        self.assertNotIn("Uncaught", p.stderr)
        self.assertNotIn("ERR_FILE_NOT_FOUND", p.stderr)
        dom = subprocess.run(args + ["--dump-dom", "file://" + html], capture_output=True, text=True,
                             timeout=120, stdin=subprocess.DEVNULL).stdout
        self.assertGreaterEqual(dom.count("<svg"), 2)
        # The screenshot shows the charts: the first strategy's red bars and lines.
        width, height, bpp, rows = png_pixels(shot)
        red = 0
        for row in rows:
            for x in range(0, width * bpp, bpp):
                r, g, b = row[x], row[x + 1], row[x + 2]
                red += r > 190 and g < 70 and b < 70
        self.assertGreater(red, 500, "no chart in the screenshot")

    def test_through_mqtt_with_faults_loses_nothing(self):
        code, out, err = simulate("--users", "500", "--days", "2", "--strategy", "herald", "--through-mqtt",
                                  "--seed", "4", "--report", os.path.join(self.dir, "mqtt"))
        self.assertEqual(code, 0, err)
        s = self.report("mqtt")["strategies"]["herald"]
        self.assertEqual(s["server_restarts"], 1)
        self.assertGreater(s["sent"], 500)
        self.assertEqual(s["lost"], 0, out)
        self.assertGreaterEqual(s["delivered_within_ttl_rate"], 0.9999, out)

    def test_bad_flags_get_a_clear_error(self):
        for args, want in ((["--strategy", "spam"], "unknown strategy spam"),
                           (["--users", "0"], "--users"),
                           (["--zones", "Mars/Olympus=1"], "unknown time zone"),
                           (["--days", "0"], "--days")):
            code, out, err = simulate(*args)
            self.assertEqual(code, 2, (args, err))
            self.assertIn(want, err)


if __name__ == "__main__":
    unittest.main()
