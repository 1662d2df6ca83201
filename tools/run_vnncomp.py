"""Run a VNN-COMP benchmark folder with tf1norm and report solved / unknown / wrong / time.

    python tools/run_vnncomp.py BENCHMARK_DIR [--results CSV] [--limit N]
                                [--timeout-scale X] [--group vnnlib|onnx] [--csv OUT]
                                [--reverse]

BENCHMARK_DIR holds ``*instances.csv`` (rows ``onnx,vnnlib,timeout``) and the
files it names (``.gz`` copies are decompressed into a temporary folder).
Each instance runs in this process, one at a time, with its own timeout
(times ``--timeout-scale``); its time covers reading both files and the
verification. ``--results`` takes a per-tool CSV of the vnncomp2021_results
repository (``benchmark,onnx,vnnlib,prep,result,time``) and checks every
verdict against it: ``sat`` where the tool reports ``unsat`` (or the reverse)
is **wrong**. Every ``sat`` verdict's counterexample has already been re-run
through the network by ``verify``. Prints one line per instance, then a
table per group (property file by default) and the totals.
"""

import argparse
import csv
import gzip
import os
import shutil
import sys
import tempfile
import time

import numpy as np

PUBLISHED = {"holds": "unsat", "unsat": "unsat", "violated": "sat", "sat": "sat"}


def read_instances(folder, limit=None):
    """``[(onnx, vnnlib, timeout)]`` from the folder's ``*instances.csv``."""
    names = sorted(n for n in os.listdir(folder) if n.endswith("instances.csv"))
    if not names:
        raise SystemExit(f"run_vnncomp: no *instances.csv in {folder!r}")
    with open(os.path.join(folder, names[0]), encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if len(row) >= 3]
    return [(onnx.strip(), prop.strip(), float(timeout)) for onnx, prop, timeout, *_ in rows][
        :limit
    ]


def local_file(folder, name, scratch):
    """The path of ``name`` in ``folder``, decompressing ``name.gz`` into ``scratch``."""
    path = os.path.join(folder, name)
    if os.path.exists(path):
        return path
    if os.path.exists(path + ".gz"):
        target = os.path.join(scratch, os.path.basename(name))
        if not os.path.exists(target):
            with gzip.open(path + ".gz", "rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
        return target
    raise SystemExit(f"run_vnncomp: {name!r} is in the instances file but not in {folder!r}")


def read_published(path):
    """``{(onnx basename, vnnlib basename): "sat"|"unsat"|other}`` from a results CSV."""
    published = {}
    with open(path, encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) >= 5:
                key = (os.path.basename(row[1]), os.path.basename(row[2]))
                published[key] = PUBLISHED.get(row[4].strip().lower(), row[4].strip().lower())
    return published


def run_instance(onnx_path, vnnlib_path, timeout):
    """``(result, seconds)``: ``sat``/``unsat``/``timeout``/``error`` of one instance."""
    from tf1norm import bounds
    from tf1norm.cli.vnnlib import RESULTS

    start = time.monotonic()
    try:
        network, prop = bounds.from_onnx(onnx_path), bounds.from_vnnlib(vnnlib_path)
        verdict = bounds.verify(
            network, prop, time_limit=max(timeout - (time.monotonic() - start), 0.0)
        )
        result = RESULTS[verdict.status]
    except (ValueError, RuntimeError) as error:
        print(f"  error: {error}", file=sys.stderr)
        result = "error"
    return result, time.monotonic() - start


def judge(result, expected):
    """``solved``, ``unknown`` or ``wrong`` against the published verdict (if any)."""
    if result not in ("sat", "unsat"):
        return "unknown"
    if expected in ("sat", "unsat") and expected != result:
        return "wrong"
    return "solved"


def summarize(records, group_of):
    """Rows ``(group, solved, unknown, wrong, median s, total s)`` and the overall row."""
    groups = {}
    for record in records:
        groups.setdefault(group_of(record), []).append(record)
    rows = [_summary_row(name, items) for name, items in groups.items()]
    return rows, _summary_row("all", records)


def _summary_row(name, items):
    counts = {key: sum(r["judged"] == key for r in items) for key in ("solved", "unknown", "wrong")}
    seconds = [r["seconds"] for r in items]
    return (
        name,
        counts["solved"],
        counts["unknown"],
        counts["wrong"],
        float(np.median(seconds)),
        float(np.sum(seconds)),
    )


def print_table(rows, total, out=None):
    out = out or sys.stdout
    print(f"| {'group':<22} | solved | unknown | wrong | median s | total s |", file=out)
    print("|" + "|".join("-" * w for w in (24, 8, 9, 7, 10, 9)) + "|", file=out)
    for name, solved, unknown, wrong, median, seconds in rows + [total]:
        print(
            f"| {name:<22} | {solved:6d} | {unknown:7d} | {wrong:5d} | {median:8.2f} | "
            f"{seconds:7.1f} |",
            file=out,
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="benchmark folder with *instances.csv")
    parser.add_argument("--results", help="published per-tool results CSV to check against")
    parser.add_argument("--limit", type=int, help="run only the first N instances")
    parser.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every instance's timeout by this (default 1)",
    )
    parser.add_argument(
        "--group",
        choices=["vnnlib", "onnx"],
        default="vnnlib",
        help="summary rows per property file (default) or per network",
    )
    parser.add_argument("--csv", help="also write the per-instance records to this CSV")
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="run the instances last to first (after --limit is applied)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    published = read_published(args.results) if args.results else {}
    records = []
    with tempfile.TemporaryDirectory(prefix="vnncomp-") as scratch:
        instances = list(enumerate(read_instances(args.folder, args.limit)))
        for index, (onnx, prop, timeout) in instances[::-1] if args.reverse else instances:
            result, seconds = run_instance(
                local_file(args.folder, onnx, scratch),
                local_file(args.folder, prop, scratch),
                timeout * args.timeout_scale,
            )
            expected = published.get((os.path.basename(onnx), os.path.basename(prop)), "-")
            records.append(
                {
                    "index": index,
                    "onnx": onnx,
                    "vnnlib": prop,
                    "result": result,
                    "expected": expected,
                    "seconds": seconds,
                    "judged": judge(result, expected),
                }
            )
            print(
                f"{index:4d} {onnx:<40} {prop:<22} {result:<8} published {expected:<8} "
                f"{records[-1]['judged']:<8} {seconds:7.2f} s",
                flush=True,
            )
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    rows, total = summarize(records, lambda r: os.path.basename(r[args.group]))
    print_table(rows, total)
    return 1 if total[3] else 0


if __name__ == "__main__":
    sys.exit(main())
