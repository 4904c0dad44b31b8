"""`tlsedge fleet-key new [--id ID]` through the real binary: a key line for
the fleet key file (`ID BASE64` of 32 random bytes) on stdout, a fresh key
each time, the default id "k" and the UTC date, an id checked as the key
file checks it; the lines written to a 0600 file make a key file."""

import base64
import datetime
import os
import re
import stat
import unittest

from common import make_tempdir, run, tlsedge_bin

LINE = re.compile(r"^([A-Za-z0-9._-]{1,32}) ([A-Za-z0-9+/]{43}=)\n$")


class FleetKeyTest(unittest.TestCase):

    def fleet_key(self, *args, ok=True):
        res = run([tlsedge_bin(), "fleet-key", *args], timeout=60)
        if ok:
            self.assertEqual(res.returncode, 0,
                             f"fleet-key {' '.join(args)} failed\nstdout:\n{res.stdout}\n"
                             f"stderr:\n{res.stderr}")
        return res

    def parse(self, output):
        m = LINE.match(output)
        self.assertIsNotNone(m, f"not a key line: {output!r}")
        key = base64.b64decode(m.group(2), validate=True)
        self.assertEqual(len(key), 32)
        return m.group(1), key

    def test_new_key_lines_make_a_key_file(self):
        before = datetime.datetime.now(datetime.timezone.utc).strftime("k%Y%m%d")
        first = self.fleet_key("new")
        after = datetime.datetime.now(datetime.timezone.utc).strftime("k%Y%m%d")
        self.assertEqual(first.stderr, "")
        first_id, first_key = self.parse(first.stdout)
        self.assertIn(first_id, (before, after))

        second_id, second_key = self.parse(self.fleet_key("new", "--id", "fleet-2.a_b").stdout)
        self.assertEqual(second_id, "fleet-2.a_b")
        self.assertNotEqual(first_key, second_key)
        self.assertNotEqual(self.parse(self.fleet_key("new").stdout)[1], first_key)

        # The rotated file an operator writes: the new line first, then the
        # old one, mode 0600 from creation.
        tmp = make_tempdir(self)
        path = os.path.join(tmp, "fleet.key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# tlsedge fleet key: the first line seals\n")
            f.write(f"fleet-2.a_b {base64.b64encode(second_key).decode()}\n")
            f.write(first.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            lines = [line for line in f.read().splitlines() if not line.startswith("#")]
        self.assertEqual([self.parse(line + "\n")[0] for line in lines],
                         ["fleet-2.a_b", first_id])

    def test_bad_ids_are_usage_errors(self):
        for bad in ("", "a b", "k/1", "x" * 33, "ké"):
            res = self.fleet_key("new", "--id", bad, ok=False)
            self.assertEqual(res.returncode, 2, f"--id {bad!r}: {res.stdout}{res.stderr}")
            self.assertEqual(res.stdout, "")
            self.assertIn("tlsedge fleet-key new:", res.stderr)
            self.assertIn("key id", res.stderr)

    def test_help_and_a_missing_action(self):
        res = self.fleet_key("help")
        self.assertIn("new", res.stdout)
        self.assertIn("the first seals", res.stdout)
        res = self.fleet_key(ok=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("tlsedge fleet-key: a command is required", res.stderr)
        res = run([tlsedge_bin(), "--help"], timeout=60)
        self.assertIn("fleet-key", res.stdout)


if __name__ == "__main__":
    unittest.main()
