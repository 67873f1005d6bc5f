//! Generates a combined access log with an exact number of distinct image URLs, seeded and
//! reproducible, fast enough for tens of millions of lines (scripts/bench-scale.sh).
//!
//! usage: cargo run --release --example gen_log -- OUT DISTINCT [SEED]
//!
//! 1.5 lines a distinct URL: every URL is requested once or twice (a permutation of the lines
//! spreads them over a week), 5 % of the lines are 404s on URLs of their own, the rest 200s,
//! ~200 bytes a line like `scripts/gen-access-log.py`'s.

use std::io::Write;

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_log OUT DISTINCT [SEED]");
        std::process::exit(2);
    }
    let distinct: u64 = args[2].parse().expect("DISTINCT: a number");
    let seed: u64 = args
        .get(3)
        .map_or(42, |s| s.parse().expect("SEED: a number"));
    let lines = distinct + distinct / 2;
    // a stride coprime with the line count: i -> i * stride mod lines is a permutation
    let mut stride = (lines / 2 + 7919) | 1;
    while gcd(stride, lines) != 1 {
        stride += 2;
    }
    let kinds = ["pins", "avatars", "products", "feed", "stories", "thumbs"];
    let exts = ["jpg", "jpg", "jpg", "webp", "avif", "png", "gif"];
    let sizes = [75, 236, 474, 736];
    let uas = [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/122.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/122.0 Mobile Safari/537.36",
    ];
    let t0: u64 = 1_710_237_600; // 2024-03-12T10:00:00Z
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&args[1])?);
    let mut line = Vec::with_capacity(256);
    for i in 0..lines {
        let slot = (i as u128 * stride as u128 % lines as u128) as u64;
        let h = mix(seed ^ i);
        // 404s on URLs of their own, the rest: URL `slot mod distinct` (once or twice each)
        let (status, id) = if h.is_multiple_of(20) {
            (404, distinct + i)
        } else {
            (200, slot % distinct)
        };
        let u = mix(seed.wrapping_add(id));
        let t = t0 + i * 604_800 / lines;
        let (d, rem) = ((t - 1_709_251_200) / 86_400, (t - 1_709_251_200) % 86_400);
        line.clear();
        writeln!(
            line,
            "{}.{}.{}.{} - - [{:02}/Mar/2024:{:02}:{:02}:{:02} +0000] \"GET /img/{}/{:06x}/{:09}_{}x.{} HTTP/1.1\" {} {} \"https://www.example.com/\" \"{}\"",
            1 + h % 254,
            (h >> 8) & 255,
            (h >> 16) & 255,
            (h >> 24) & 255,
            d + 1,
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            kinds[(u % 6) as usize],
            (u >> 8) & 0xff_ffff,
            id,
            sizes[((u >> 32) % 4) as usize],
            exts[((u >> 40) % 7) as usize],
            status,
            2000 + (h >> 32) % 198_000,
            uas[((h >> 40) % 3) as usize],
        )?;
        out.write_all(&line)?;
    }
    out.flush()
}
