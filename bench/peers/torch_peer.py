# PyTorch's side of the peer run: times forward and backward (data + weights, one
# aten.convolution_backward call, as autograd runs it) in NCHW and channels_last, as JSON lines.
#
#   /usr/bin/python3 torch_peer.py --threads N [--min-time S] [--max-reps R] PROBLEMS.json
#   PROBLEMS.json: the list `convkit_peer describe` prints (a subset of it).
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


ONLY_SAMPLE_FACTOR = 10  # as kOnlySampleFactor in best_of.hpp


def best_of(fn, min_time, max_reps):
    """One warm-up call, then the best of at least one and up to max_reps calls within
    min_time seconds; only a warm-up longer than ONLY_SAMPLE_FACTOR * min_time is the only
    sample. The C++ drivers' protocol (bench/peers/best_of.hpp)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > ONLY_SAMPLE_FACTOR * min_time:
        return first, 1
    best, spent, reps = None, 0.0, 0
    while reps < max_reps and (reps == 0 or spent < min_time):
        t0 = time.perf_counter()
        fn()
        s = time.perf_counter() - t0
        best = s if best is None else min(best, s)
        spent += s
        reps += 1
    return best, reps


def run(p, threads, min_time, max_reps):
    nd = p["nd"]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    layouts = {1: None, 2: torch.channels_last, 3: torch.channels_last_3d}
    src_shape = [p["mb"], p["ic"]] + p["in"]
    wei_shape = [p["oc"], p["ic"] // p["g"]] + p["k"]
    dst_shape = [p["mb"], p["oc"]] + p["out"]
    sym = p["pad_l"] == p["pad_r"]
    for fmt in ("nchw", "nhwc"):
        head = {"impl": "torch", "str": p["str"], "format": fmt, "threads": threads}
        if fmt == "nhwc" and layouts[nd] is None:
            continue
        mf = torch.contiguous_format if fmt == "nchw" else layouts[nd]
        x = torch.rand(src_shape).to(memory_format=mf)
        w = torch.rand(wei_shape).to(memory_format=mf)
        gy = torch.rand(dst_shape).to(memory_format=mf)
        if not sym:  # torch's conv pads symmetrically: pad a copy first (then pad 0)
            pads = []
            for lo, hi in zip(reversed(p["pad_l"]), reversed(p["pad_r"])):
                pads += [lo, hi]
            x = F.pad(x, pads).contiguous(memory_format=mf)
        padding = p["pad_l"] if sym else [0] * nd
        args = (p["stride"], padding, p["dil"])

        def fwd():
            with torch.no_grad():
                conv(x, w, None, p["stride"], padding, p["dil"], p["g"])

        def bwd():
            torch.ops.aten.convolution_backward(gy, x, w, None, *args, False, [0] * nd, p["g"],
                                                [True, True, False])

        for name, fn in (("fwd", fwd), ("bwd", bwd)):
            seconds, reps = best_of(fn, min_time, max_reps)
            print(json.dumps(dict(head, **{"pass": name, "seconds": seconds, "reps": reps})),
                  flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--max-reps", type=int, default=10)
    ap.add_argument("problems")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.problems) as f:
        problems = json.load(f)
    for p in problems:
        try:
            run(p, a.threads, a.min_time, a.max_reps)
        except RuntimeError as e:  # report and go on with the other problems
            print(json.dumps({"impl": "torch", "str": p["str"], "threads": a.threads,
                              "skipped": str(e)[:200]}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
