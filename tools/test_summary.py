#!/usr/bin/env python3
"""Counts test cases from Bazel's JUnit XML results and prints one line:
`N passed, N failed[, N skipped]`.

Usage: test_summary.py [--testlogs DIR]... [--subset DIR LABELS]... LABEL...
(the test targets of the run, e.g. from `bazel query 'tests(//...)'`; each
--testlogs is the bazel-testlogs directory of one configuration the targets
ran in, by default just `bazel-testlogs`; each --subset is the directory of a
configuration that ran only LABELS, a space-separated list). A target without
a result file in a directory (it did not build or did not run) counts as one
failed test.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET


def result_file(testlogs, label):
    package, _, name = label.lstrip("/").partition(":")
    return os.path.join(testlogs, package, name, "test.xml")


def main(args):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testlogs", action="append", default=[])
    parser.add_argument("--subset", nargs=2, action="append", default=[],
                        metavar=("DIR", "LABELS"))
    parser.add_argument("labels", nargs="*")
    options = parser.parse_args(args)
    testlogs = options.testlogs or ["bazel-testlogs"]
    labels = options.labels
    passed = failed = skipped = 0
    results = [(d, label) for d in testlogs for label in labels]
    for directory, subset in options.subset:
        results += [(directory, label) for label in subset.split()]
    for directory, label in results:
        path = result_file(directory, label)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            print(f"{label}: no test results in {directory}", file=sys.stderr)
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
