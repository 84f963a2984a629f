#!/usr/bin/python3
"""PyTorch's side of bench/peers/model_step.sh: one MobileNetV2 training step (forward,
cross-entropy, backward, SGD-momentum update), timed like convkit's model_step.

    /usr/bin/python3 bench/peers/torch_model_step.py --threads N [--batch 8] [--size 224]
        [--width 1.0] [--format nchw|nhwc] [--steps 6]

The model is torchvision's MobileNetV2 as rebuilt in tools/fixtures/make_nn_fixtures.py
(torchvision may be missing). Prints one JSON line like model_step.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools", "fixtures"))
from make_nn_fixtures import MobileNetV2  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--format", choices=("nchw", "nhwc"), default="nchw")
    ap.add_argument("--steps", type=int, default=6)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = MobileNetV2(num_classes=1000, width_mult=a.width, dropout=0.2).train()
    x = torch.rand(a.batch, 3, a.size, a.size) * 2 - 1
    if a.format == "nhwc":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.tensor([(i * 37) % 1000 for i in range(a.batch)])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=4e-5)
    totals, best = [], None
    for s in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if s == 0:
            continue
        totals.append(t3 - t0)
        if best is None or t3 - t0 < best[0]:
            best = (t3 - t0, t1 - t0, t2 - t1, t3 - t2)
    totals.sort()
    print(json.dumps({"impl": "torch", "format": a.format, "threads": a.threads, "batch": a.batch,
                      "size": a.size, "width": a.width, "best": best[0],
                      "median": totals[len(totals) // 2], "forward": best[1], "backward": best[2],
                      "update": best[3]}))


if __name__ == "__main__":
    main()
