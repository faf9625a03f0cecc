"""`clinlog kb check`, as an operator validates a licensed decision-support
knowledge base before deploying it: the built-in seed is valid and says what
it holds; a file with one bad line is refused whole, naming the line and the
reason, in text and in --json; bad usage exits 2."""
import json
import os
import subprocess
import unittest
import uuid

import common
from common import T


class TestKbCheck(unittest.TestCase):

    def run_kb(self, *args):
        return subprocess.run([common.CLINLOG, "kb", "check"] + list(args), capture_output=True,
                              text=True, timeout=T(30))

    def write(self, text):
        path = os.path.join(common.TMP, "kb-%s.kb" % uuid.uuid4().hex)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_the_seed_is_valid(self):
        r = self.run_kb("--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        o = json.loads(r.stdout)
        self.assertTrue(o["valid"])
        self.assertEqual(o["format"], 1)
        self.assertTrue(o["version"])
        for k in ("ingredients", "interactions", "ingredientPairs", "allergyGroups",
                  "doseLimits", "sources", "vitalThresholds", "weightGainRules",
                  "deviceAndAdherenceLimits"):
            self.assertGreater(o[k], 0, k)
        # class rules expand: more ingredient pairs than rules
        self.assertGreater(o["ingredientPairs"], o["interactions"])
        r = self.run_kb()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("valid knowledge base", r.stdout)

    def test_a_small_file_and_its_refusals(self):
        good = ("clinlog-kb 1\nversion test-1\n"
                "source s1 A test source\n"
                "ingredient 11289 warfarin\ningredient 5640 ibuprofen\n"
                "interaction i1 11289 5640 major source=s1 | bleeding | avoid\n")
        r = self.run_kb(self.write(good), "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        o = json.loads(r.stdout)
        self.assertEqual((o["version"], o["ingredients"], o["interactions"]), ("test-1", 2, 1))
        cases = [
            (good.replace("major", "dreadful"), 6),
            (good.replace("ingredient 5640 ibuprofen\n", "ingredient 5640x ibuprofen\n"), 5),
            (good.replace("source=s1", "source=nope"), 6),
            ("clinlog-kb 9\nversion x\n", 1),
        ]
        for text, line in cases:
            path = self.write(text)
            r = self.run_kb(path, "--json")
            self.assertEqual(r.returncode, 1, text)
            o = json.loads(r.stdout)
            self.assertFalse(o["valid"])
            self.assertEqual(o["error"], "CL_EMALFORMED")
            self.assertIn("line %d:" % line, o["message"], text)
            r = self.run_kb(path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("line %d:" % line, r.stderr)

    def test_usage(self):
        r = subprocess.run([common.CLINLOG, "kb"], capture_output=True, text=True, timeout=T(30))
        self.assertEqual(r.returncode, 2)
        r = self.run_kb("a.kb", "b.kb")
        self.assertEqual(r.returncode, 2)
        r = self.run_kb(os.path.join(common.TMP, "no-such.kb"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("CL_EIO", r.stderr)
