# The peer run's conductor (started by run.sh): measures the machine limits, convkit, PyTorch
# and oneDNN on the same problems and thread counts, then prints the table and writes it to
# bench/results/ as Markdown and JSON.
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile

PASSES = ("fwd", "bwd_data", "bwd_weights")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def json_lines(cmd):
    log("  $", " ".join(cmd))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def cpu_model_and_flags():
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, flags


def openblas_core():
    """OpenBLAS's kernels, chosen when it loads: (in use, picked by itself). run.sh sources
    scripts/openblas-core.sh, which sets OPENBLAS_CORETYPE where Debian's OpenBLAS falls back
    to its SSE3 kernels ("Prescott") on a CPU newer than itself."""
    def corename(env):
        # In a child: a library's core is fixed when it loads, so each query loads it afresh.
        code = ("import ctypes; lib = ctypes.CDLL('libopenblas.so.0'); "
                "lib.openblas_get_corename.restype = ctypes.c_char_p; "
                "print(lib.openblas_get_corename().decode())")
        done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env)
        return (done.stdout.strip() or None) if done.returncode == 0 else None

    itself = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    return corename(None), corename(itself)


def geomean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def select(problems, quick):
    """Quick: the first problem of each shape file; full: all of them."""
    if not quick:
        return problems
    seen, out = set(), []
    for p in problems:
        if p["family"] not in seen:
            seen.add(p["family"])
            out.append(p)
    return out


def best(records, impl, str_, threads, passes):
    """Best time over layouts of the sum of `passes` (one layout for the whole step), with it."""
    by_fmt = {}
    for r in records:
        if r.get("impl") == impl and r.get("str") == str_ and r.get("threads") == threads \
                and "seconds" in r:
            got = by_fmt.setdefault(r["format"], {})
            if r["pass"] not in got or r["seconds"] < got[r["pass"]]["seconds"]:
                got[r["pass"]] = r  # several rounds: the best of them
    options = []
    for fmt, got in by_fmt.items():
        if all(p in got for p in passes):
            options.append((sum(got[p]["seconds"] for p in passes), fmt,
                            "+".join(sorted({got[p].get("kernel", "") for p in passes} - {""}))))
    return min(options) if options else None


def build_rows(problems, records, limits, threads_list):
    rows = []
    for p in problems:
        one_bytes = 4.0 * (p["src"] + p["dst"] + p["wei"])
        one_flops = 2.0 * p["macs"]
        for t in threads_list:
            lim = limits[t]
            for mode, n_passes in (("fwd", 1), ("fwd_bwd", 3)):
                ck_passes = PASSES[:n_passes]
                ck = best(records, "convkit", p["str"], t, ck_passes)
                th = best(records, "torch", p["str"], t, ("fwd",) if mode == "fwd" else ("fwd", "bwd"))
                dn = best(records, "onednn", p["str"], t, ck_passes)
                gm = best(records, "gemm", p["str"], t, ck_passes)
                kk = best(records, "convkit_kernel", p["str"], t, ck_passes)
                mem_s = n_passes * one_bytes / (lim["copy_gbs"] * 1e9)
                fma_s = n_passes * one_flops / (lim["fma_gflops"] * 1e9)
                bound = "mem" if mem_s >= fma_s else "fma"
                row = {"family": p["family"], "name": p["name"], "str": p["str"],
                       "count": p["count"], "threads": t, "mode": mode, "bound": bound,
                       "limit_s": max(mem_s, fma_s)}
                for key, res in (("convkit", ck), ("torch", th), ("onednn", dn), ("gemm", gm),
                                 ("convkit_kernel", kk)):
                    row[key] = None if res is None else {"s": res[0], "format": res[1], "kernel": res[2]}
                if ck:
                    s = ck[0]
                    row["gbs"] = n_passes * one_bytes / s / 1e9
                    row["gflops"] = n_passes * one_flops / s / 1e9
                    row["of_limit"] = row["limit_s"] / s
                    row["x_torch"] = th[0] / s if th else None
                    row["x_onednn"] = dn[0] / s if dn else None
                    row["x_gemm"] = gm[0] / s if gm else None
                if kk:
                    row["kernel_of_limit"] = row["limit_s"] / kk[0]
                rows.append(row)
    return rows


def pass_rows(problems, records, threads_list):
    """convkit against oneDNN pass by pass (the targets compare each pass)."""
    out = []
    for p in problems:
        for t in threads_list:
            for ps in PASSES:
                ck = best(records, "convkit", p["str"], t, (ps,))
                dn = best(records, "onednn", p["str"], t, (ps,))
                out.append({"family": p["family"], "name": p["name"], "str": p["str"],
                            "count": p["count"], "threads": t, "pass": ps,
                            "convkit": ck and {"s": ck[0], "format": ck[1], "kernel": ck[2]},
                            "onednn": dn and {"s": dn[0], "kernel": dn[2]},
                            "x_onednn": dn[0] / ck[0] if ck and dn else None})
    return out


def ms(x):
    return "—" if x is None else f"{x['s'] * 1e3:.3f}"


def pct(x):
    return "—" if x is None else f"{x * 100:.0f}%"


def ratio(x):
    return "—" if x is None else f"{x:.2f}x"


def markdown(meta, limits, rows, prows, threads_list):
    rounds = meta["timing"].get("rounds", 1)
    L = [f"# convkit peer run {meta['utc']}", "",
         f"{meta['mode']} run on {meta['machine']} ({meta['vector_unit']}); OpenBLAS kernels "
         f"{meta['openblas_core'] or 'unknown'}"
         + (f" (it picked {meta['openblas_detected']} itself)"
            if meta['openblas_detected'] != meta['openblas_core'] else "")
         + f"; problems from {', '.join(meta['shape_files'])}.",
         (f"Every driver ran {rounds} times in turn (rounds); each time and machine limit is the "
          "best round's. " if rounds > 1 else "") +
         "Times are the best of up to N calls (ms). `x torch` / `x oneDNN` = peer time / convkit "
         "time (above 1: convkit is faster); convkit is timed through its public API, which "
         "allocates each output, and `kernel-only` through the same dispatch and threads into "
         "outputs allocated once; GEMM = OpenBLAS sgemm called directly on the "
         "products a pointwise layer is. `rate` is GB/s for memory-bound rows (bytes = src + "
         "dst + wei per pass) and GFLOP/s for arithmetic-bound ones; `of limit` = the time the "
         "machine limit allows (copy bandwidth or FMA peak, measured in this run) / convkit's time.",
         "", "## Machine limits measured in this run", "",
         "| threads | copy GB/s | FMA GFLOP/s |", "|---:|---:|---:|"]
    for t in threads_list:
        L.append(f"| {t} | {limits[t]['copy_gbs']:.1f} | {limits[t]['fma_gflops']:.1f} |")
    L += ["", "## Forward and forward+backward", "",
          "| family | layer | problem | thr | mode | convkit ms | layout | rate | of limit "
          "| kernel-only ms | of limit "
          "| torch ms | x torch | oneDNN ms | x oneDNN | GEMM ms | x GEMM |",
          "|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ck = r["convkit"]
        rate = "—"
        if ck:
            rate = f"{r['gbs']:.1f} GB/s" if r["bound"] == "mem" else f"{r['gflops']:.1f} GFLOP/s"
        name = r["name"] + (f" (x{r['count']})" if r["count"] > 1 else "")
        L.append(f"| {r['family']} | {name} | `{r['str']}` | {r['threads']} | {r['mode']} | "
                 f"{ms(ck)} | {ck['format'] if ck else 'skipped'} | {rate} | "
                 f"{pct(r.get('of_limit'))} | {ms(r['convkit_kernel'])} | "
                 f"{pct(r.get('kernel_of_limit'))} | "
                 f"{ms(r['torch'])} | {ratio(r.get('x_torch'))} | {ms(r['onednn'])} | "
                 f"{ratio(r.get('x_onednn'))} | {ms(r['gemm'])} | {ratio(r.get('x_gemm'))} |")
    L += ["", "## Geometric means (layers weighted by how often the network repeats them)", "",
          "| family | thr | mode | x torch | x oneDNN | x GEMM | of limit | rows |",
          "|---|---:|---|---:|---:|---:|---:|---:|"]
    for fam in dict.fromkeys(r["family"] for r in rows):
        for t in threads_list:
            for mode in ("fwd", "fwd_bwd"):
                sel = [r for r in rows if r["family"] == fam and r["threads"] == t
                       and r["mode"] == mode and r["convkit"]]
                w = lambda key: geomean([r.get(key) for r in sel for _ in range(r["count"])])
                L.append(f"| {fam} | {t} | {mode} | {ratio(w('x_torch'))} | {ratio(w('x_onednn'))} | {ratio(w('x_gemm'))} | "
                         f"{'—' if w('of_limit') is None else format(w('of_limit') * 100, '.0f') + '%'} | {len(sel)} |")
    L += ["", "## convkit against oneDNN, pass by pass", "",
          "| family | problem | thr | pass | convkit ms | kernel | oneDNN ms | oneDNN impl | x oneDNN |",
          "|---|---|---:|---|---:|---|---:|---|---:|"]
    for r in prows:
        ck, dn = r["convkit"], r["onednn"]
        L.append(f"| {r['family']} | `{r['str']}` | {r['threads']} | {r['pass']} | {ms(ck)} | "
                 f"{ck['kernel'] if ck else 'skipped'} | {ms(dn)} | {dn['kernel'] if dn else '—'} | "
                 f"{ratio(r['x_onednn'])} |")
    skipped = sorted({f"{r['impl']} {r.get('pass', '')} `{r['str']}` ({r.get('threads', '?')} "
                      f"threads, {r.get('format', '')}): {r['skipped']}" for r in meta["skipped"]})
    if skipped:
        L += ["", "## Skipped", ""] + [f"- {s}" for s in skipped]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convkit-peer", required=True)
    ap.add_argument("--onednn-peer")
    ap.add_argument("--gemm-peer")
    ap.add_argument("--machine-peak", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time every driver this many times in turn, keeping each one's best: "
                         "a busy neighbour on a shared machine then slows one round, not one peer")
    ap.add_argument("--ref-macs", default="1e7",
                    help="convkit times a pass that only the reference takes up to this many MACs")
    ap.add_argument("--out", required=True)
    ap.add_argument("shapes", nargs="+")
    a = ap.parse_args()
    threads_list = [int(t) for t in a.threads.split(",")]
    # Full runs: the best of up to 50 calls within 0.2 s per pass; a sub-millisecond layer with
    # only 5 calls at 2 threads measured thread wake-ups as much as the kernel.
    min_time, max_reps = (0.05, 2) if a.quick else (0.2, 50)
    timing = ["--min-time", str(min_time), "--max-reps", str(max_reps)]

    problems = json.loads(subprocess.run([a.convkit_peer, "describe", *a.shapes], check=True,
                                         stdout=subprocess.PIPE, text=True).stdout)
    problems = select(problems, a.quick)
    log(f"{len(problems)} problems, threads {threads_list}, "
        f"{'quick' if a.quick else 'full'} (min-time {min_time} s, max {max_reps} reps)")
    tmp = tempfile.mkdtemp(prefix="convkit-peers-")
    shape_file = os.path.join(tmp, "problems.txt")
    with open(shape_file, "w") as f:
        f.writelines(p["str"] + "\n" for p in problems)
    json_file = os.path.join(tmp, "problems.json")
    with open(json_file, "w") as f:
        json.dump(problems, f)
    dnnl_file = os.path.join(tmp, "problems_onednn.txt")
    with open(dnnl_file, "w") as f:
        for i, p in enumerate(problems):  # named p<i>: a str may hold blanks ("[0, 1]")
            if not p["direct_zero_padded"]:
                continue
            vals = [f"p{i}", p["nd"], p["mb"], p["ic"], p["oc"], p["g"]]
            for key in ("in", "out", "k", "stride", "pad_l", "pad_r", "dil"):
                vals += p[key]
            f.write(" ".join(str(v) for v in vals) + "\n")

    cpu_model, cpu_flags = cpu_model_and_flags()
    blas_core, blas_detected = openblas_core()
    records, limits = [], {}
    for t in threads_list:
        for rnd in range(max(a.rounds, 1)):
            log(f"threads {t}, round {rnd + 1} of {max(a.rounds, 1)}:")
            lim = json_lines([a.machine_peak, "--threads", str(t)])[0]
            log(f"  copy {lim['copy_gbs']:.1f} GB/s, FMA {lim['fma_gflops']:.1f} GFLOP/s")
            if t in limits:  # the best round's limits: fractions of them stay conservative
                lim["copy_gbs"] = max(lim["copy_gbs"], limits[t]["copy_gbs"])
                lim["fma_gflops"] = max(lim["fma_gflops"], limits[t]["fma_gflops"])
            limits[t] = lim
            records += json_lines([a.convkit_peer, "time", "--threads", str(t), *timing,
                                   "--ref-macs", a.ref_macs, shape_file])
            if not a.no_torch:
                records += json_lines(["/usr/bin/python3",
                                       os.path.join(os.path.dirname(__file__), "torch_peer.py"),
                                       "--threads", str(t), *timing, json_file])
            for driver in (a.onednn_peer, a.gemm_peer):
                if driver:
                    for r in json_lines([driver, "--threads", str(t), *timing, dnnl_file]):
                        r["str"] = problems[int(r["str"][1:])]["str"]
                        records.append(r)

    rows = build_rows(problems, records, limits, threads_list)
    prows = pass_rows(problems, records, threads_list)
    utc = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    meta = {"utc": utc, "mode": "quick" if a.quick else "full",
            "machine": f"{cpu_model} ({platform.machine()}), {os.cpu_count()} CPUs",
            "vector_unit": ("AVX-512" if "avx512f" in cpu_flags else "AVX2" if "avx2" in cpu_flags
                            else "no AVX2"),
            "openblas_core": blas_core, "openblas_detected": blas_detected,
            "shape_files": [os.path.basename(s) for s in a.shapes],
            "timing": {"min_time_s": min_time, "max_reps": max_reps, "rounds": max(a.rounds, 1)},
            "skipped": [r for r in records if "skipped" in r]}
    md = markdown(meta, limits, rows, prows, threads_list)
    print(md)
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, f"peers-{meta['mode']}-{utc}")
    with open(stem + ".md", "w") as f:
        f.write(md)
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "limits": limits, "rows": rows, "pass_rows": prows,
                   "records": records}, f, indent=1)
    log(f"wrote {stem}.md and {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
