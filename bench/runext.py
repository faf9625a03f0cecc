"""bench/run's later parts (bench/run itself had outgrown one file): the
check that a run's report is whole (`bench/run --check DIR`, what
scripts/test.sh runs after `bench/run --quick`).

Only Debian's /usr/bin/python3 and its standard library."""
import json
import os

# The report's sections, in order: a run whose report.md lacks one was cut
# short (a step's figures missing show as "Not measured", never a gap).
SECTIONS = [
    "## Targets",
    "## clinlog (single node, gRPC) and PostgreSQL 15, same scenarios",
    "## Subscribe fan-out (single node)",
    "## 3 nodes against 1 node",
    "## 3 nodes: clinlog and etcd 3.4, same scenarios",
    "## 3 nodes: clinlog and PostgreSQL with synchronous standbys",
    "## HL7 v2 over MLLP (clinlog-bench ingest hl7)",
    "## FHIR writes (clinlog-bench ingest fhir)",
    "## Home-device readings (clinlog-bench ingest)",
    "## Proofs and verify (clinlog-bench proof)",
    "## Raw limits of this machine, measured in this run",
    "## Machine",
    "## Plots",
]


def _load(path, what, problems):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        problems.append("%s: cannot be read (%s)" % (what, e.strerror or e))
        return None


def check(out, steps):
    """The problems of the run written into `out` (a list of strings, empty
    when the report is whole): results.json and report.md present and
    well-formed, every step of `steps` (bench/run's (key, name) pairs) with
    figures or said skipped, no step failed, every plot listed present and
    an SVG. Targets are not judged: a missed target is a finding, not a
    broken run."""
    problems = []
    text = _load(os.path.join(out, "results.json"), "results.json", problems)
    r = None
    if text is not None:
        try:
            r = json.loads(text)
        except ValueError as e:
            problems.append("results.json: not JSON (%s)" % e)
    if isinstance(r, dict):
        for e in r.get("errors") or []:
            problems.append("step failed: %s" % e)
        for key, name in steps:
            if r.get(key) is None and not r.get(key + "_skipped"):
                problems.append("step %s: no figures in results.json (key %s) and not "
                                "skipped" % (name, key))
        for t in r.get("targets") or []:
            if not isinstance(t, dict) or not {"name", "target", "met"} <= set(t):
                problems.append("results.json: target %r lacks name, target or met" % (t,))
        if not r.get("targets"):
            problems.append("results.json: no targets")
        for p in r.get("plots") or []:
            svg = _load(os.path.join(out, p), "plot %s" % p, problems)
            if svg is not None and "<svg" not in svg:
                problems.append("plot %s: not an SVG" % p)
    elif r is not None:
        problems.append("results.json: not a JSON object")
    md = _load(os.path.join(out, "report.md"), "report.md", problems)
    if md is not None:
        if not md.startswith("# clinlog benchmark, "):
            problems.append("report.md: does not start with its title")
        at = 0
        for s in SECTIONS:
            i = md.find("\n" + s + "\n", at)
            if i < 0:
                problems.append("report.md: section %r missing or out of order" % s)
            else:
                at = i
    return problems

