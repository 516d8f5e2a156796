"""Shared helpers of the paci notebooks: where inputs and figures live, and readers for the
files the `paci` command writes (Perfetto traces, `paci sim --json` summaries, sweep CSVs,
`paci compare --json` comparisons, `paci train --metrics` JSON lines).

Every reader checks what it reads and raises an exception naming the file and the problem, so
a notebook run against missing or malformed inputs fails loudly instead of drawing nothing.

Environment:
  PACI_NB_DATA   directory of the inputs (default: notebooks/data next to this file)
  PACI_NB_OUT    directory the figures are written to (default: notebooks/out)
Each notebook also reads its own PACI_NB_* variables for individual inputs; see its first cell.
"""
import csv
import glob
import json
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent

# One colour per action kind, used by every timeline.
KIND_COLORS = {"F": "#4C72B0", "B": "#55A868", "I": "#64B5CD", "W": "#CCB974", "OPT": "#C44E52",
               "OVERLAP_F_B": "#8172B2"}
KIND_LABELS = {"F": "forward (F)", "B": "backward (B)", "I": "input grad (I)", "W": "weight grad (W)",
               "OPT": "optimizer step (OPT)", "OVERLAP_F_B": "overlapped F&B"}


class InputError(RuntimeError):
    """An input file is missing or is not what the CLI writes."""


def data_dir():
    return Path(os.environ.get("PACI_NB_DATA") or HERE / "data")


def out_dir():
    d = Path(os.environ.get("PACI_NB_OUT") or HERE / "out")
    d.mkdir(parents=True, exist_ok=True)
    return d


def input_files(var, default_pattern):
    """Files named by environment variable `var` (comma-separated paths or glob patterns,
    relative ones against the data directory), else `default_pattern` in the data directory.
    Raises InputError when nothing matches or a named file does not exist."""
    spec = os.environ.get(var)
    items = [s.strip() for s in (spec.split(",") if spec else [default_pattern]) if s.strip()]
    found = []
    for item in items:
        p = Path(item)
        if not p.is_absolute():
            p = data_dir() / p
        if any(c in item for c in "*?["):
            found += sorted(Path(x) for x in glob.glob(str(p)))
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"{var}: {p} does not exist (generate the inputs with notebooks/run)")
    if not found:
        raise InputError(f"{var}: no file matches {', '.join(items)} under {data_dir()} "
                         f"(generate the inputs with notebooks/run, or set {var})")
    return found


def input_file(var, default_name):
    files = input_files(var, default_name)
    if len(files) != 1:
        raise InputError(f"{var}: expected one file, got {len(files)}: {', '.join(map(str, files))}")
    return files[0]


def save(fig, name):
    """Write `fig` as OUT/name.png and close it; returns the path."""
    path = out_dir() / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"{path} was not written")
    print(f"wrote {path}")
    return path


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON: {e}")


def need(obj, key, path, what):
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{path}: {what} has no '{key}'")
    return obj[key]


def finite(x, path, what):
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
        raise InputError(f"{path}: {what} is not a finite number: {x!r}")
    return float(x)


# --- Perfetto traces (schedules/trace/chrome.cc) ------------------------------------------

class Trace:
    """One paci trace. `groups` holds one entry per run in the file: a plain trace has one
    ('', header); a `paci compare --trace` file has 'measured' (pids 0..) and 'predicted'
    (pids 1000..)."""

    def __init__(self, path, header, groups, actions, memory):
        self.path = Path(path)
        self.header = header          # otherData of the (first) run
        self.groups = groups          # [(label, pid offset, header)]
        self.actions = actions        # dicts: group, device, name, kind, stage, mb, pos, version, t0, t1
        self.memory = memory          # dicts: group, device, time, dynamic, total

    @property
    def name(self):
        return self.path.stem

    def time_unit(self):
        """Trace times are seconds; with uniform `--cost` values they are the cost's units."""
        cost = str(self.header.get("cost", ""))
        return "cost units" if cost.startswith("uniform") else "s"


def _check_header(h, path, where):
    if not isinstance(h, dict) or h.get("paci_trace") != 1:
        raise InputError(f"{path}: {where} is not a paci trace header (otherData.paci_trace must be 1)")
    for key in ("schedule", "origin", "devices", "microbatches", "steps", "stage_device", "memory_unit",
                "static_memory"):
        need(h, key, path, where)
    return h


def read_trace(path):
    j = load_json(path)
    if not isinstance(j, dict):
        raise InputError(f"{path}: not a Chrome/Perfetto trace object")
    header = _check_header(j.get("otherData"), path, "otherData")
    groups = [("", 0, header)]
    if "predicted" in header:  # paci compare --trace: measured pids 0.., predicted 1000..
        groups = [("measured", 0, header), ("predicted", 1000, _check_header(header["predicted"], path,
                                                                              "otherData.predicted"))]
    events = need(j, "traceEvents", path, "the trace")
    if not isinstance(events, list):
        raise InputError(f"{path}: traceEvents is not a list")

    def group_of(pid):
        g = max(k for k, (_, off, _) in enumerate(groups) if pid >= off)
        dev = pid - groups[g][1]
        if not 0 <= dev < groups[g][2]["devices"]:
            raise InputError(f"{path}: pid {pid} is not a device of the trace")
        return g, dev

    actions, memory = [], []
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            raise InputError(f"{path}: traceEvents[{i}] is not an object")
        if e.get("ph") == "X" and e.get("cat") == "compute":
            a = need(e, "args", path, f"compute slice {i}")
            g, dev = group_of(need(e, "pid", path, f"compute slice {i}"))
            kind = need(a, "kind", path, f"compute slice {i} args")
            if kind not in KIND_COLORS:
                raise InputError(f"{path}: compute slice {i} has unknown kind {kind!r}")
            x = {"group": g, "device": dev, "name": e.get("name", ""), "kind": kind}
            for key in ("stage", "mb", "pos", "version"):
                x[key] = int(need(a, key, path, f"compute slice {i} args"))
            if kind == "OVERLAP_F_B":  # the backward half of an overlapped F&B
                for key in ("stage_b", "mb_b", "version_b"):
                    x[key] = int(need(a, key, path, f"compute slice {i} args"))
            x["t0"] = finite(need(a, "t0", path, f"compute slice {i} args"), path, f"slice {i} t0")
            x["t1"] = finite(need(a, "t1", path, f"compute slice {i} args"), path, f"slice {i} t1")
            if x["t1"] < x["t0"]:
                raise InputError(f"{path}: compute slice {i} ({x['name']}) ends before it starts")
            actions.append(x)
        elif e.get("ph") == "C" and str(e.get("name", "")).startswith("memory"):
            a = need(e, "args", path, f"memory counter {i}")
            g, dev = group_of(need(e, "pid", path, f"memory counter {i}"))
            memory.append({"group": g, "device": dev,
                           "time": finite(need(e, "ts", path, f"memory counter {i}"), path, "ts") / 1e6,
                           "dynamic": finite(need(a, "dynamic", path, f"memory counter {i}"), path, "dynamic"),
                           "total": finite(need(a, "total", path, f"memory counter {i}"), path, "total")})
    if not actions:
        raise InputError(f"{path}: the trace has no compute slices (\"cat\":\"compute\")")
    return Trace(path, header, groups, actions, memory)


def stage_versions(trace, group=0):
    """Per (stage, mb): forward version, backward version (B or I), and drift = vB - vF, the
    weight-version drift exactly as the CLI defines it; plus the gradient delay (version the
    first OPT after the gradient is complete replaced, minus vF)."""
    fwd, bwd = {}, {}
    acts = sorted((a for a in trace.actions if a["group"] == group),
                  key=lambda a: (a["device"], a["t0"], a["pos"]))
    for a in acts:
        key = (a["stage"], a["mb"])
        if a["kind"] == "F":
            fwd[key] = a["version"]
        elif a["kind"] in ("B", "I"):
            bwd[key] = a["version"]
        elif a["kind"] == "OVERLAP_F_B":  # its forward's version, and its backward half's
            fwd[key] = a["version"]
            bwd[(a["stage_b"], a["mb_b"])] = a["version_b"]
    drift = {k: bwd[k] - fwd[k] for k in fwd if k in bwd}
    delay, pending = {}, {}
    for a in acts:
        if a["kind"] in ("B", "W"):
            pending.setdefault(a["stage"], []).append(a["mb"])
        elif a["kind"] == "OVERLAP_F_B":
            pending.setdefault(a["stage_b"], []).append(a["mb_b"])
        elif a["kind"] == "OPT":
            for m in pending.get(a["stage"], []):
                if (a["stage"], m) in fwd:
                    delay[(a["stage"], m)] = a["version"] - fwd[(a["stage"], m)]
            pending[a["stage"]] = []
    return drift, delay


# --- paci sim --json ---------------------------------------------------------------------

def read_sim_summary(path):
    j = load_json(path)
    if not isinstance(j, dict) or j.get("format") != "paci-sim-summary":
        raise InputError(f"{path}: not a `paci sim --json` summary (format must be paci-sim-summary)")
    results = need(j, "results", path, "the summary")
    if not isinstance(results, list) or not results:
        raise InputError(f"{path}: results is empty")
    for r in results:
        for key in ("schedule", "devices", "microbatches", "memory_unit", "device", "stage", "peak_memory"):
            need(r, key, path, "a result")
        if len(r["device"]) != r["devices"]:
            raise InputError(f"{path}: {r['schedule']}: {len(r['device'])} device entries for "
                             f"{r['devices']} devices")
        for d in r["device"]:
            for key in ("weights", "grads", "optimizer", "stashed", "activations", "peak_memory", "bubble"):
                finite(need(d, key, path, f"{r['schedule']} device entry"), path, key)
        for s in r["stage"]:
            for key in ("max_drift", "mean_drift", "max_delay", "mean_delay"):
                finite(need(s, key, path, f"{r['schedule']} stage entry"), path, key)
    return results


# --- paci sim --sweep CSV -----------------------------------------------------------------

SWEEP_COLUMNS = ["schedule", "makespan", "step_time", "samples_per_second", "tokens_per_second", "bubble",
                 "steady_bubble", "peak_memory", "peak_activations", "max_drift"]


def read_sweep_csv(path):
    """Rows of `paci sim --sweep KEY=... --csv`; returns (key, rows) with numbers as floats."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            rows = list(reader)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    if len(cols) < 2 or cols[1:] != SWEEP_COLUMNS:
        raise InputError(f"{path}: columns {cols} are not KEY,{','.join(SWEEP_COLUMNS)} (paci sim --sweep)")
    key = cols[0]
    out = []
    for n, r in enumerate(rows, start=2):
        try:
            x = {c: float(r[c]) for c in cols if c != "schedule"}
        except (TypeError, ValueError):
            raise InputError(f"{path}:{n}: a value is not a number: {r}")
        x["schedule"] = r["schedule"]
        out.append(x)
    if not out:
        raise InputError(f"{path}: no rows")
    return key, out


# --- paci train --metrics -----------------------------------------------------------------

def read_metrics(path):
    """Training rows {step, loss, lr, tokens_per_s, time_s} and validation rows {step, val_loss,
    val_ppl} of one `paci train --metrics` file (and its closing {"summary": ...} row, if any). Adds `tokens` (tokens trained on up to that
    step) to every row: tokens_per_s * time_s counts the tokens of this run since its first
    step (a resumed run starts later), so tokens per update = that / (step - first + 1)."""
    train, val, summary = [], [], None
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not JSON: {e}")
        if isinstance(r, dict) and "summary" in r:  # the run's closing summary (per-stage memory, drift)
            summary = r["summary"]
            continue
        if not isinstance(r, dict) or "step" not in r:
            raise InputError(f"{path}:{n}: a metrics row needs 'step' (or is a 'summary' row)")
        if "loss" in r:
            for key in ("loss", "lr", "tokens_per_s", "time_s"):
                finite(need(r, key, f"{path}:{n}", "a training row"), f"{path}:{n}", key)
            train.append(r)
        elif "val_loss" in r:
            finite(r["val_loss"], f"{path}:{n}", "val_loss")
            val.append(r)
        else:
            raise InputError(f"{path}:{n}: neither a training row (loss) nor a validation row (val_loss)")
    if not train:
        raise InputError(f"{path}: no training rows")
    first = train[0]["step"] - 1
    per_update = [r["tokens_per_s"] * r["time_s"] / (r["step"] - first) for r in train]
    tokens_per_update = sorted(per_update)[len(per_update) // 2]
    if not tokens_per_update > 0 or any(abs(p - tokens_per_update) > 1e-3 * tokens_per_update for p in per_update):
        raise InputError(f"{path}: tokens_per_s * time_s is not proportional to the steps done "
                         f"(tokens per update {min(per_update):.6g}..{max(per_update):.6g}); "
                         "is this one run's metrics file?")
    tokens_per_update = round(tokens_per_update)
    times = {r["step"]: r["time_s"] for r in train}
    for r in train:
        r["tokens"] = r["step"] * tokens_per_update
    for r in val:
        r["tokens"] = r["step"] * tokens_per_update
        if r["step"] not in times:
            raise InputError(f"{path}: validation at step {r['step']} has no training row for that step")
        r["time_s"] = times[r["step"]]
    return {"name": Path(path).stem, "train": train, "val": val, "tokens_per_update": tokens_per_update,
            "summary": summary}


# The order schedules are listed in (README's table), for legends and panels.
SCHEDULE_ORDER = ["gpipe", "1f1b", "interleaved-1f1b", "zb-h1", "zb-1p", "zb-2p", "paci", "pipedream",
                  "pipedream-2bw", "zb-v", "v-half", "v-min", "dualpipev", "interleaved-zb", "looped-bfs",
                  "paci-v"]


def schedule_rank(name):
    return SCHEDULE_ORDER.index(name) if name in SCHEDULE_ORDER else len(SCHEDULE_ORDER)


def schedule_color(name):
    """A fixed colour per schedule, the same in every notebook."""
    palette = plt.get_cmap("tab10").colors
    return palette[schedule_rank(name) % len(palette)]


# Marker per schedule: several schedules coincide (gpipe and 1f1b have the same bubble, zb-h1 and
# the asynchronous ones often too), so the shapes differ and the larger ones are hollow.
_MARKERS = {"gpipe": ("o", 9, True), "1f1b": ("x", 7, False), "interleaved-1f1b": ("s", 6, False),
            "zb-h1": ("D", 9, True), "zb-1p": ("^", 7, False), "zb-2p": ("v", 7, False),
            "paci": ("*", 10, False), "pipedream": ("+", 9, False), "pipedream-2bw": ("1", 10, False),
            "zb-v": ("<", 7, False), "v-half": (">", 7, False), "v-min": ("p", 8, True),
            "dualpipev": ("h", 8, True), "interleaved-zb": ("X", 7, False), "looped-bfs": ("2", 10, False),
            "paci-v": ("P", 8, False)}


def schedule_style(name):
    """Keyword arguments for plot(): colour and marker of a schedule."""
    m, size, hollow = _MARKERS.get(name, ("o", 6, False))
    c = schedule_color(name)
    kw = {"color": c, "marker": m, "markersize": size, "markeredgewidth": 1.5}
    if hollow:
        kw["markerfacecolor"] = "none"
    return kw


def integer_log2_axis(ax, values):
    """A log2 x axis labelled with the plain values."""
    from matplotlib.ticker import FixedLocator, FixedFormatter, NullLocator
    vals = sorted({int(v) for v in values})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(vals))
    ax.xaxis.set_major_formatter(FixedFormatter([str(v) for v in vals]))
    ax.xaxis.set_minor_locator(NullLocator())


# --- bench/paci-study results ---------------------------------------------------------------

# paci-study.csv: one row per configuration; paci-study-runs.csv: one row per run.
STUDY_COLUMNS = ["config", "schedule", "microbatches", "accum", "backward", "lr", "seeds", "drift_bound",
                 "predicted_step_s", "predicted_bubble", "final_val_mean", "final_val_sd",
                 "predicted_time_to_target_mean_s", "speedup_vs_best_1f1b_mean", "speedup_vs_best_1f1b_sd"]
STUDY_RUN_COLUMNS = ["run", "config", "schedule", "microbatches", "accum", "backward", "lr", "seed", "final_val"]


def study_dir():
    """The directory holding paci-study.csv, paci-study-runs.csv, paci-study.md and paci-study/
    (bench/paci-study's output): PACI_NB_STUDY (a relative one is taken in the data directory),
    else the repository's bench/results."""
    spec = os.environ.get("PACI_NB_STUDY", "").strip()
    if not spec:
        return HERE.parent / "bench" / "results"
    p = Path(spec).expanduser()
    return p if p.is_absolute() else data_dir() / p


def _read_csv(path, columns, what):
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            raw = list(reader)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (run bench/paci-study, or set PACI_NB_STUDY to the directory "
                         f"holding {what})")
    missing = [c for c in columns if c not in cols]
    if missing:
        raise InputError(f"{path}: lacks columns {missing} (is this bench/paci-study's {what}?)")
    if not raw:
        raise InputError(f"{path}: no rows")
    return raw


def _number(path, n, row, c, kind=float):
    try:
        v = kind(row[c])
        if not math.isfinite(v):
            raise ValueError(row[c])
        return v
    except (TypeError, ValueError):
        raise InputError(f"{path}:{n}: column {c} is not a number: {row.get(c)!r}")


def _study_meta(md_path):
    import re
    try:
        text = Path(md_path).read_text()
    except FileNotFoundError:
        raise InputError(f"{md_path}: no such file (bench/paci-study writes it next to paci-study.csv)")
    pats = {"target_model": r"simulator for `([^`]+)` on", "device": r"on (\d+) x `([^`]+)`",
            "target_batch": r"global batch (\d+) sequences split", "updates": r"; (\d+) updates \(",
            "best_m": r"\*\*M = (\d+)\*\*", "lr": r"1F1B sweep = \*\*([-+0-9.eE]+)\*\*"}
    meta = {}
    for key, pat in pats.items():
        m = re.search(pat, text)
        if not m:
            raise InputError(f"{md_path}: cannot find the {key.replace('_', ' ')} (pattern {pat!r}); "
                             "is this bench/paci-study's report?")
        meta[key] = m.group(2) if key == "device" else m.group(1)
        if key == "device":
            meta["stages"] = int(m.group(1))
    for key in ("target_batch", "updates", "best_m"):
        meta[key] = int(meta[key])
    meta["lr"] = float(meta["lr"])
    meta["quick"] = "--quick run" in text
    meta["complete"] = "Complete." in text
    return meta


def study_crossing(val, target):
    """The update (interpolated linearly between evaluations) at which the validation curve
    {step: loss} first reaches target, as bench/paci-study computes it; None if it never does."""
    prev = None
    for s in sorted(val):
        v = val[s]
        if v <= target:
            if prev is None or prev[1] == v:
                return float(s)
            ps, pv = prev
            return ps + (s - ps) * (pv - target) / (pv - v)
        prev = (s, v)
    return None


def read_study(directory=None):
    """bench/paci-study's results: configurations (paci-study.csv), runs (paci-study-runs.csv),
    the time axis and protocol the report names (paci-study.md) and every run's metrics
    (paci-study/<run>.jsonl, read with read_metrics). Checks that they agree: each configuration's
    seeds have runs, and its mean final validation loss and mean speedup over the best 1F1B,
    recomputed from the metrics as bench/paci-study computes them (per seed: the lowest loss both
    reach, interpolated crossing x predicted step), are the table's. Raises InputError naming the
    file."""
    import statistics
    d = Path(directory) if directory else study_dir()
    if not d.is_dir():
        raise InputError(f"PACI_NB_STUDY: {d} is not a directory (bench/paci-study writes its results to "
                         "bench/results; `PACI_STUDY_OUT=DIR bench/paci-study --quick` makes a small one in DIR)")
    csv_path, runs_path, md_path = d / "paci-study.csv", d / "paci-study-runs.csv", d / "paci-study.md"
    meta = _study_meta(md_path)
    configs = []
    for n, r in enumerate(_read_csv(csv_path, STUDY_COLUMNS, "configuration table"), start=2):
        x = dict(r)
        for c in STUDY_COLUMNS[7:]:
            x[c] = _number(csv_path, n, r, c)
        for c in ("microbatches", "accum", "seeds", "drift_bound"):
            x[c] = _number(csv_path, n, r, c, int)
        x["lr"] = _number(csv_path, n, r, "lr")
        if x["predicted_step_s"] <= 0:
            raise InputError(f"{csv_path}:{n}: predicted_step_s must be positive, got {x['predicted_step_s']}")
        configs.append(x)
    runs = {}
    for n, r in enumerate(_read_csv(runs_path, STUDY_RUN_COLUMNS, "run table"), start=2):
        x = dict(r)
        x["seed"] = _number(runs_path, n, r, "seed", int)
        x["lr"] = _number(runs_path, n, r, "lr")
        if r["final_val"] == "inf":  # a sweep run that diverged (NaN losses): listed, not plotted
            x["final_val"], x["metrics"] = math.inf, None
            runs[x["run"]] = x
            continue
        x["final_val"] = _number(runs_path, n, r, "final_val")
        m = read_metrics(d / "paci-study" / f"{x['run']}.jsonl")
        if not m["val"]:
            raise InputError(f"{d / 'paci-study' / x['run']}.jsonl: no validation rows (val_loss)")
        if abs(m["val"][-1]["val_loss"] - x["final_val"]) > 5.1e-5:
            raise InputError(f"{runs_path}:{n}: final_val {x['final_val']} is not the last validation loss of "
                             f"its metrics ({m['val'][-1]['val_loss']:.6f})")
        x["metrics"] = m
        runs[x["run"]] = x
    best = f"1f1b-M{meta['best_m']}"
    for c in configs:
        c["runs"] = [runs.get(f"{c['config']}-lr{c['lr']:g}-s{s}") for s in range(1, c["seeds"] + 1)]
        c["flush"] = [runs.get(f"{best}-lr{meta['lr']:g}-s{s}") for s in range(1, c["seeds"] + 1)]
        if None in c["runs"] or None in c["flush"] or any(r["metrics"] is None for r in c["runs"] + c["flush"]):
            raise InputError(f"{csv_path}: {c['config']} at lr {c['lr']:g} has {c['seeds']} seeds, but "
                             f"{runs_path} lacks some of their runs (or of {best}'s), or one diverged")
        fpred = next((x["predicted_step_s"] for x in configs if x["config"] == best), None)
        speed = []
        for r, f in zip(c["runs"], c["flush"]):
            vr = {v["step"]: v["val_loss"] for v in r["metrics"]["val"]}
            vf = {v["step"]: v["val_loss"] for v in f["metrics"]["val"]}
            target = max(min(vr.values()), min(vf.values()))
            speed.append(study_crossing(vf, target) * fpred / (study_crossing(vr, target) * c["predicted_step_s"]))
        fin = statistics.fmean(r["metrics"]["val"][-1]["val_loss"] for r in c["runs"])
        if abs(fin - c["final_val_mean"]) > 5.1e-5 or abs(statistics.fmean(speed) - c["speedup_vs_best_1f1b_mean"]) > 5.1e-4:
            raise InputError(f"{csv_path}: {c['config']} (lr {c['lr']:g}): mean final loss {c['final_val_mean']} / "
                             f"speedup {c['speedup_vs_best_1f1b_mean']} are not what its runs give ({fin:.4f} / "
                             f"{statistics.fmean(speed):.4f}): are they from the same study run?")
    return {**meta, "dir": d, "csv": csv_path, "md": md_path, "configs": configs, "runs": runs}
