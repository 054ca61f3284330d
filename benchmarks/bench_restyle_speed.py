"""Extraction speed with and without the restyled content descriptor, side by side in one process (float32, the
CPU's defaults; batch 8 at 224 px, rounds alternating).

    python benchmarks/bench_restyle_speed.py
"""
import time, torch
from artspace.features import Extractor
from artspace.spec import FeatureSpec
torch.manual_seed(0)
x = torch.rand(8, 3, 224, 224)
ex = {"restyled": Extractor(FeatureSpec(), device="cpu"),
      "plain": Extractor(FeatureSpec(descriptor_norm=None), device="cpu")}
for e in ex.values(): e.encode(x)
t = {k: [] for k in ex}
for r in range(4):
    for k, e in ex.items():
        s = time.perf_counter(); e.encode(x); t[k].append(time.perf_counter() - s)
for k, v in t.items():
    print(k, "img/s per round:", " ".join(f"{8 / s:.2f}" for s in v))
