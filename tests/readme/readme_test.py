#!/usr/bin/env python3
"""Runs every `paci ...` and `mpirun ... paci ...` line of the README's bash blocks, in order,
in a scratch folder, so the documentation cannot drift from the program.

Shortened, never rewritten otherwise: --steps, --save-every and --eval-every are divided by 25
(rounded up), mpirun gets --allow-run-as-root --oversubscribe (CI runs as root on 2 cores).
Files the README expects the user to have: `hosts` (a hostfile; written here) and the shipped
sim/examples/ (copied here). Lines of other programs (srun, bench/, tools/) are not run.
Each line is a test case in the JUnit XML that Bazel reads ($XML_OUTPUT_FILE).

usage: readme_test.py README.md PACI_BINARY EXAMPLES_DIR
"""
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

SHORTEN = ("--steps", "--save-every", "--eval-every")


def commands(readme):
    """(line number, command) of the runnable lines of every ```bash block."""
    out, in_block, pending, start = [], False, "", 0
    for no, line in enumerate(open(readme, encoding="utf-8"), 1):
        s = line.rstrip("\n")
        if s.strip().startswith("```"):
            in_block = s.strip() == "```bash" and not in_block
            continue
        if not in_block:
            continue
        if not pending:
            start = no
        cont = s.rstrip().endswith("\\")
        pending += s.rstrip().rstrip("\\") + " " if cont else s
        if cont:
            continue
        cmd = re.sub(r"(^|\s)#.*$", "", pending).strip()  # comments (no '#' inside arguments)
        pending = ""
        words = shlex.split(cmd) if cmd else []
        if words and (words[0] == "paci" or (words[0] == "mpirun" and "paci" in words)):
            out.append((start, words))
    return out


def prepare(words, paci):
    w = list(words)
    w[w.index("paci")] = paci  # the program: the first "paci" (later ones are schedule names)
    for i, x in enumerate(w):
        if i > 0 and w[i - 1] in SHORTEN:
            w[i] = str(max(1, math.ceil(int(x) / 25)))
    if w[0] == "mpirun":
        w[1:1] = ["--allow-run-as-root", "--oversubscribe"]
    return w


def main():
    readme, paci, examples = (os.path.abspath(a) for a in sys.argv[1:4])
    scratch = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "readme")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    shutil.copytree(examples, os.path.join(scratch, "sim", "examples"))
    with open(os.path.join(scratch, "hosts"), "w") as f:
        f.write("localhost slots=8\n")
    env = dict(os.environ)
    if env.get("PACI_DATA_DIR"):
        env["PACI_CACHE"] = env["PACI_DATA_DIR"]  # the prepared shards: no download
    cases = commands(readme)
    if len(cases) < 10:
        print(f"only {len(cases)} runnable lines found in {readme}: is the parser broken?")
        return 1
    suite = ET.Element("testsuite", name="readme")
    failed = 0
    for no, words in cases:
        argv = prepare(words, paci)
        name = f"line {no}: {' '.join(words)}"
        t0 = time.time()
        try:
            r = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True,
                               timeout=300, stdin=subprocess.DEVNULL)
            ok, detail = r.returncode == 0, f"exit {r.returncode}\n{r.stderr[-2000:]}"
        except subprocess.TimeoutExpired:
            ok, detail = False, "timed out after 300 s"
        case = ET.SubElement(suite, "testcase", name=name, classname="readme",
                             time=f"{time.time() - t0:.2f}")
        print(f"{'ok  ' if ok else 'FAIL'} {time.time() - t0:6.1f} s  {name}", flush=True)
        if not ok:
            failed += 1
            ET.SubElement(case, "failure", message=detail.splitlines()[0]).text = detail
            print(detail)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failed))
    if os.environ.get("XML_OUTPUT_FILE"):
        ET.ElementTree(suite).write(os.environ["XML_OUTPUT_FILE"], encoding="utf-8",
                                    xml_declaration=True)
    print(f"{len(cases) - failed} of {len(cases)} README lines ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
