#!/usr/bin/env python3
"""Generates a realistic nginx combined access log for benchmarks, seeded and reproducible.

usage: gen-access-log.py OUT LINES [DISTINCT_URLS] [SEED]
Image paths with Zipf-like popularity, 90% status 200, some 304/404/206, a few POSTs, bytes,
referers and user agents of realistic length (~215 bytes a line).
"""
import random
import sys

out, lines = sys.argv[1], int(sys.argv[2])
distinct = int(sys.argv[3]) if len(sys.argv) > 3 else 300_000
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 42)

kinds = ["pins", "avatars", "products", "feed", "stories", "thumbs"]
exts = ["jpg", "jpg", "jpg", "webp", "avif", "png", "gif"]
urls = [
    f"/img/{rng.choice(kinds)}/{rng.randrange(16**6):06x}/{rng.randrange(10**9):09d}_{rng.choice((75, 236, 474, 736))}x.{rng.choice(exts)}"
    + (f"?v={rng.randrange(9)}" if rng.random() < 0.1 else "")
    for _ in range(distinct)
]
# Zipf-ish: rank r drawn with weight 1/r^0.9, via a precomputed cumulative table
weights = [1.0 / (r + 1) ** 0.9 for r in range(distinct)]
uas = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.64 Mobile Safari/537.36",
]
statuses = [200] * 90 + [304] * 6 + [404] * 2 + [206] * 2
months = ["Mar"]
batch = 50_000
with open(out, "w") as f:
    t0 = 1710237600  # 2024-03-12T10:00:00Z
    done = 0
    while done < lines:
        n = min(batch, lines - done)
        picks = rng.choices(urls, weights=weights, k=n)
        buf = []
        for i, u in enumerate(picks):
            t = t0 + (done + i) * 604800 // lines
            d, rem = divmod(t - 1709251200, 86400)  # days since 2024-03-01
            h, rem = divmod(rem, 3600)
            m, s = divmod(rem, 60)
            method = "GET" if rng.random() < 0.995 else "POST"
            st = rng.choice(statuses)
            buf.append(
                f'{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} - - '
                f'[{d + 1:02d}/Mar/2024:{h:02d}:{m:02d}:{s:02d} +0000] "{method} {u} HTTP/1.1" {st} '
                f'{rng.randrange(2000, 200000)} "https://www.example.com/" "{rng.choice(uas)}"\n'
            )
        f.write("".join(buf))
        done += n
