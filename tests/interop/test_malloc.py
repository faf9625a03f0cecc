"""clinlogd starts with glibc's per-thread cache of freed blocks enlarged
(store/alloc.h, cl_malloc_tune_exec): unless the operator already chose a
glibc.malloc.tcache_count in GLIBC_TUNABLES, it adds
glibc.malloc.tcache_count=1024 to it and executes itself again, so the
setting is in force from the first allocation; its first line on stderr
says which count it runs with. (glibc cuts GLIBC_TUNABLES at its first
':' in the process's initial environment while it parses it, so
/proc/PID/environ cannot tell.)"""
import os
import re
import unittest

import common
from common import Server


def _sanitized():
    # ASan brings its own allocator: clinlogd then leaves glibc's alone
    with open(common.CLINLOGD, "rb") as f:
        return b"__asan_init" in f.read()


@unittest.skipIf(_sanitized(), "a sanitizer build keeps its own allocator")
class TestTcache(unittest.TestCase):
    def run_with(self, tunables):
        """Starts clinlogd with GLIBC_TUNABLES = tunables (None: unset) and
        returns (the count it says it runs with, its pid stayed the one
        started)."""
        saved = os.environ.get("GLIBC_TUNABLES")
        if tunables is None:
            os.environ.pop("GLIBC_TUNABLES", None)
        else:
            os.environ["GLIBC_TUNABLES"] = tunables
        try:
            server = Server(audit=False)
            server.start()
        finally:
            if saved is None:
                os.environ.pop("GLIBC_TUNABLES", None)
            else:
                os.environ["GLIBC_TUNABLES"] = saved
        try:
            first = server.stderr().splitlines()[0]
            m = re.search(r", malloc tcache_count (\d+)$", first)
            self.assertIsNotNone(m, first)
            # the exec replaced the program in the same process: the
            # server answers on the pid that was started
            with open("/proc/%d/cmdline" % server.pid, "rb") as f:
                self.assertIn(b"clinlogd", f.read().split(b"\0")[0])
            return int(m.group(1))
        finally:
            self.assertEqual(server.stop(), 0, server.stderr()[-2000:])

    def test_set_when_unset(self):
        self.assertEqual(self.run_with(None), 1024)

    def test_added_to_other_tunables(self):
        self.assertEqual(self.run_with("glibc.malloc.mxfast=64"), 1024)

    def test_an_operators_choice_is_kept(self):
        self.assertEqual(self.run_with("glibc.malloc.tcache_count=7"), 7)
        self.assertEqual(self.run_with("glibc.malloc.mxfast=0:glibc.malloc.tcache_count=64"), 64)
