"""Renders the fault-injection suite's rows (JSON files written by the tests) as a Markdown
table between the fault-table markers of a Markdown page. Usage: fault_table.py REPORT_DIR PAGE (scripts/fault-suite: docs/fault-tolerance.md)."""
import datetime
import json
import os
import pathlib
import re
import sys

report, readme = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
rows = sorted((json.loads(p.read_text()) for p in report.glob("*.json")),
              key=lambda r: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", r["scenario"])])
if not rows:
    sys.exit("fault_table: no scenario rows in %s (did the suite run?)" % report)


def seconds(value):
    return "" if value is None else "%.2f s" % value


text = readme.read_text()
begin, end = "<!-- fault-table:begin -->", "<!-- fault-table:end -->"
if begin not in text or end not in text:
    sys.exit("fault_table: %s has no %s ... %s markers" % (readme, begin, end))
# Every scenario the README shows must come from this run: a row whose test is gone or did not
# report fails here instead of silently dropping out (remove a row by hand, with its test).
shown = {line.split("|")[1].strip() for line in text.split(begin, 1)[1].split(end, 1)[0].splitlines()
         if line.startswith("| ") and not line.startswith("| Scenario")}
missing = sorted(shown - {r["scenario"] for r in rows})
if missing:
    sys.exit("fault_table: no result for %d scenario(s) shown in %s: %s" % (len(missing), readme, "; ".join(missing)))

lines = [
    "| Scenario | Injected | Outcome | Final parameters | Detection | Recovery | Wall time |",
    "|---|---|---|---|---|---|---|",
]
for r in rows:
    lines.append("| %s | %s | %s | %s | %s | %s | %.0f s |" % (
        r["scenario"], r["injected"], r["outcome"],
        "no training to compare" if r.get("bitwiseEqual") is None
        else "bitwise equal to the unfaulted run" if r["bitwiseEqual"] else "differ",
        seconds(r.get("detectionSeconds")), seconds(r.get("recoverySeconds")), r["wallSeconds"]))
stamp = "Written by `scripts/fault-suite` on %s (%d cores); detection: from the fault to the coordinator's `lost` event; " \
        "recovery: from the fault to the next completed step." % (datetime.date.today().isoformat(), os.cpu_count())
table = "\n".join(lines)
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
readme.write_text(head + begin + "\n" + table + "\n\n" + stamp + "\n" + end + tail)
print("fault_table: %d scenarios written to %s" % (len(rows), readme))
