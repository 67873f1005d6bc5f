#!/usr/bin/env python3
"""Writes scenarios/demo-urls.csv: 3,000 image-like paths with Zipf(1.0) request counts,
the bundled list that `edgeload demo` replays. Deterministic (seeded)."""
import random
import sys

rng = random.Random(20261126)
kinds = ["pins", "avatars", "products", "feed", "stories"]
exts = ["jpg", "jpg", "jpg", "webp", "avif", "png"]
widths = [75, 150, 236, 474, 736, 1200]
rows = []
for rank in range(1, 3001):
    kind = rng.choice(kinds)
    path = f"/img/{kind}/{rng.randrange(16**6):06x}/{rng.randrange(10**9):09d}_{rng.choice(widths)}x.{rng.choice(exts)}"
    if rng.random() < 0.15:
        path += f"?v={rng.randrange(1, 5)}"
    count = max(1, int(50000 / rank))
    rows.append((path, count))
out = open(sys.argv[1] if len(sys.argv) > 1 else "scenarios/demo-urls.csv", "w")
out.write("path,count,bytes,first_seen,last_seen\n")
for p, c in rows:
    out.write(f"{p},{c},,,\n")
