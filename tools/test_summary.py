#!/usr/bin/env python3
"""Counts test cases from Bazel's JUnit XML results and prints one line:
`N passed, N failed[, N skipped]`.

Usage: test_summary.py LABEL...   (the test targets of the run, e.g. from
`bazel query 'tests(//...)'`). A target without a result file (it did not build
or did not run) counts as one failed test.
"""
import os
import sys
import xml.etree.ElementTree as ET


def result_file(label):
    package, _, name = label.lstrip("/").partition(":")
    return os.path.join("bazel-testlogs", package, name, "test.xml")


def main(labels):
    passed = failed = skipped = 0
    for label in labels:
        path = result_file(label)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            print(f"{label}: no test results", file=sys.stderr)
            failed += 1
            continue
        cases = root.iter("testcase")
        for case in cases:
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None or case.get("status") == "notrun":
                skipped += 1
            else:
                passed += 1
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
