//! URL list files (read/write) and the order in which `run` walks them.
//!
//! Two forms are read, told apart by the first non-comment line:
//! - plain: one path per line (`/img/a.jpg?w=200`); blank lines and `#` comments are skipped;
//!   an absolute URL (`https://host/p`) contributes its path and query only;
//! - CSV, as `extract` writes it: a header `path,count[,bytes,first_seen,last_seen]`, then one row
//!   per distinct path, `count` being how often it was requested.
//!
//! Paths are kept byte for byte as written: they are the cache key. A path that an HTTP client
//! could not send as written, or that could leave a target's base path (`path_refusal`: a dot
//! segment, a backslash, a `#`, a control character) is refused with its file and line.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum UrlsError {
    #[error("cannot read URL list {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}: {text:?}")]
    Bad {
        path: String,
        line: u64,
        msg: &'static str,
        text: String,
    },
    #[error("URL list {path} has no URLs")]
    Empty { path: String },
}

/// One distinct path and what is known about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UrlEntry {
    pub path: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlList {
    pub entries: Vec<UrlEntry>,
}

pub const CSV_HEADER: &str = "path,count,bytes,first_seen,last_seen";

impl UrlList {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn from_paths<I: IntoIterator<Item = S>, S: Into<String>>(paths: I) -> UrlList {
        UrlList {
            entries: paths
                .into_iter()
                .map(|p| UrlEntry {
                    path: p.into(),
                    count: 1,
                    bytes: None,
                    first_seen: None,
                    last_seen: None,
                })
                .collect(),
        }
    }

    pub fn read_file(path: &Path) -> Result<UrlList, UrlsError> {
        let name = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| UrlsError::Io {
            path: name.clone(),
            source,
        })?;
        let list = Self::read(std::io::BufReader::new(f), &name)?;
        if list.is_empty() {
            return Err(UrlsError::Empty { path: name });
        }
        Ok(list)
    }

    /// Reads either form; `name` is used in error messages.
    pub fn read<R: BufRead>(mut r: R, name: &str) -> Result<UrlList, UrlsError> {
        let mut entries = Vec::new();
        let mut line = String::new();
        let mut lineno = 0u64;
        let mut csv_cols: Option<Vec<String>> = None;
        let mut first = true;
        loop {
            line.clear();
            let n = r.read_line(&mut line).map_err(|source| UrlsError::Io {
                path: name.to_string(),
                source,
            })?;
            if n == 0 {
                break;
            }
            lineno += 1;
            let text = line.trim_end_matches(['\n', '\r']);
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let bad = |msg| UrlsError::Bad {
                path: name.to_string(),
                line: lineno,
                msg,
                text: text.to_string(),
            };
            if first {
                first = false;
                if trimmed.starts_with("path,") || trimmed == "path" {
                    let cols: Vec<String> =
                        trimmed.split(',').map(|c| c.trim().to_string()).collect();
                    if !cols.iter().any(|c| c == "count") && cols.len() > 1 {
                        return Err(bad("CSV header must have a count column"));
                    }
                    csv_cols = Some(cols);
                    continue;
                }
            }
            let checked = |p: Option<String>| {
                let p = p.ok_or_else(|| bad("not a path or URL"))?;
                match path_refusal(&p) {
                    Some(why) => Err(bad(why)),
                    None => Ok(p),
                }
            };
            match &csv_cols {
                None => entries.push(UrlEntry {
                    path: checked(normalise_path(trimmed))?,
                    count: 1,
                    bytes: None,
                    first_seen: None,
                    last_seen: None,
                }),
                Some(cols) => {
                    let mut rdr = csv::ReaderBuilder::new()
                        .has_headers(false)
                        .from_reader(text.as_bytes());
                    let rec = rdr
                        .records()
                        .next()
                        .and_then(Result::ok)
                        .ok_or_else(|| bad("malformed CSV row"))?;
                    let mut e = UrlEntry {
                        path: String::new(),
                        count: 1,
                        bytes: None,
                        first_seen: None,
                        last_seen: None,
                    };
                    for (col, val) in cols.iter().zip(rec.iter()) {
                        let opt = |v: &str| (!v.is_empty() && v != "-").then(|| v.to_string());
                        match col.as_str() {
                            "path" => e.path = checked(normalise_path(val))?,
                            "count" => {
                                e.count = val
                                    .parse()
                                    .map_err(|_| bad("count is not a whole number"))?
                            }
                            "bytes" => {
                                e.bytes = match opt(val) {
                                    Some(v) => Some(
                                        v.parse()
                                            .map_err(|_| bad("bytes is not a whole number"))?,
                                    ),
                                    None => None,
                                }
                            }
                            "first_seen" => e.first_seen = opt(val),
                            "last_seen" => e.last_seen = opt(val),
                            _ => {}
                        }
                    }
                    if e.path.is_empty() {
                        return Err(bad("row has no path"));
                    }
                    entries.push(e);
                }
            }
        }
        Ok(UrlList { entries })
    }

    /// Writes the CSV form (the one `extract` produces).
    pub fn write_csv<W: Write>(&self, w: W) -> std::io::Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record(CSV_HEADER.split(','))?;
        for e in &self.entries {
            let bytes = e.bytes.map(|b| b.to_string()).unwrap_or_default();
            wr.write_record([
                e.path.as_str(),
                &e.count.to_string(),
                &bytes,
                e.first_seen.as_deref().unwrap_or(""),
                e.last_seen.as_deref().unwrap_or(""),
            ])?;
        }
        wr.flush()
    }
}

/// Why a path cannot be sent as written, if it cannot: URL parsers resolve dot segments (`..`,
/// `.`, also spelt `%2e`) and read a backslash as `/`, so such a path could climb out of the
/// target's base path (`https://cdn/tenant-a` + `/../x` is `https://cdn/x`); a `#` starts a
/// fragment, which is never sent; control characters are dropped or break the request line.
/// Other bytes a request line cannot hold raw (a space, non-ASCII) are percent-encoded when sent.
pub fn path_refusal(path: &str) -> Option<&'static str> {
    let b = path.as_bytes();
    if let Some(&c) = (b.iter()).find(|&&c| c < 0x20 || c == 0x7f || c == b'#' || c == b'\\') {
        return Some(match c {
            b'#' => "has a '#': a fragment is never sent",
            b'\\' => "has a backslash, which URL parsers read as '/'",
            _ => "has a control character",
        });
    }
    let path_part = &b[..memchr::memchr(b'?', b).unwrap_or(b.len())];
    if path_part.split(|&c| c == b'/').any(is_dot_segment) {
        return Some(
            "has a dot segment ('.' or '..', also as %2e), which could leave the base path",
        );
    }
    None
}

fn is_dot_segment(s: &[u8]) -> bool {
    let eq = |x: &[u8]| s.eq_ignore_ascii_case(x);
    match s.len() {
        1 => s == b".",
        2 => s == b"..",
        3 => eq(b"%2e"),
        4 => eq(b".%2e") || eq(b"%2e."),
        6 => eq(b"%2e%2e"),
        _ => false,
    }
}

/// `/p?q` stays as is; `http(s)://host[:port]/p?q` becomes `/p?q`; anything else is rejected.
pub fn normalise_path(s: &str) -> Option<String> {
    let s = s.trim();
    if s.starts_with('/') && !s.starts_with("//") {
        return Some(s.to_string());
    }
    for scheme in ["http://", "https://"] {
        if s.len() > scheme.len()
            && s.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        {
            let rest = &s[scheme.len()..];
            return Some(match rest.find(['/', '?']) {
                Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_string(),
                Some(i) => format!("/{}", &rest[i..]),
                None => "/".to_string(),
            });
        }
    }
    None
}

/// How `run` walks the list. Every order is a pure function of the request number, so workers
/// on any thread agree without sharing an RNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// 0, 1, 2, ... cycling.
    #[default]
    Sequential,
    /// A seeded permutation, cycling: a sweep still visits every URL exactly once.
    Shuffled,
    /// Drawn with probability proportional to `count` (seeded).
    Weighted,
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Sequential => "sequential",
            Order::Shuffled => "shuffled",
            Order::Weighted => "weighted",
        })
    }
}

impl std::str::FromStr for Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sequential" => Ok(Order::Sequential),
            "shuffled" | "shuffle" => Ok(Order::Shuffled),
            "weighted" => Ok(Order::Weighted),
            _ => Err(format!(
                "unknown order {s:?} (sequential, shuffled, weighted)"
            )),
        }
    }
}

/// splitmix64: a good, tiny, stateless mixer; `mix(seed ^ n)` is our per-request random number.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps request number -> index into the list.
#[derive(Clone, Debug)]
pub struct Picker {
    order: Order,
    n: u64,
    seed: u64,
    perm: Vec<u32>,
    cumulative: Vec<u64>,
}

impl Picker {
    pub fn new(list: &UrlList, order: Order, seed: u64, sweep: bool) -> Picker {
        let n = list.len() as u64;
        let mut p = Picker {
            order,
            n,
            seed,
            perm: Vec::new(),
            cumulative: Vec::new(),
        };
        // A sweep visits each URL once: weighted drawing would repeat some and skip others, so a
        // weighted sweep goes in list order (extract sorts by count, hottest first).
        if sweep && order == Order::Weighted {
            p.order = Order::Sequential;
        }
        match p.order {
            Order::Sequential => {}
            Order::Shuffled => {
                p.perm = (0..n as u32).collect();
                for i in (1..p.perm.len()).rev() {
                    let j = (mix(seed ^ (i as u64).wrapping_mul(0x5851_F42D_4C95_7F2D))
                        % (i as u64 + 1)) as usize;
                    p.perm.swap(i, j);
                }
            }
            Order::Weighted => {
                let mut acc = 0u64;
                p.cumulative = list
                    .entries
                    .iter()
                    .map(|e| {
                        acc += e.count.max(1);
                        acc
                    })
                    .collect();
            }
        }
        p
    }

    pub fn pick(&self, j: u64) -> usize {
        match self.order {
            Order::Sequential => (j % self.n) as usize,
            Order::Shuffled => self.perm[(j % self.n) as usize] as usize,
            Order::Weighted => {
                let total = *self.cumulative.last().unwrap_or(&1);
                let r = mix(self.seed ^ mix(j)) % total;
                self.cumulative.partition_point(|&c| c <= r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_would_leave_the_base_or_change_on_the_wire_are_refused() {
        for ok in [
            "/a.jpg",
            "/a..b/c.jpg",
            "/.well-known/x",
            "/a/...",
            "/x.jpg?p=../../y",
            "/%2f..%2f/x",
            "/caf%C3%A9.jpg",
            "/a b.jpg",
        ] {
            assert_eq!(path_refusal(ok), None, "{ok}");
        }
        for bad in [
            "/../escape.jpg",
            "/a/../../b",
            "/%2e%2e/x.jpg",
            "/%2E./x",
            "/.%2e/x",
            "/a/./b",
            "/a/%2e",
            "/a/..",
            "/a\\..\\b",
            "/a.jpg#frag",
            "/a\tb.jpg",
            "/a\u{1b}[2J.jpg",
        ] {
            assert!(path_refusal(bad).is_some(), "{bad:?}");
        }
        let e = UrlList::read("/ok.jpg\n/../x.jpg\n".as_bytes(), "list.txt").unwrap_err();
        assert!(
            e.to_string().starts_with("list.txt:2: has a dot segment"),
            "{e}"
        );
        let e = UrlList::read("path,count\n/%2e%2e/y.jpg,3\n".as_bytes(), "u.csv").unwrap_err();
        assert!(e.to_string().starts_with("u.csv:2:"), "{e}");
    }

    #[test]
    fn plain_list_with_comments_and_urls() {
        let text =
            "# images\n/a.jpg\n\n  /b.png?w=1  \nhttps://cdn.example.com/c.webp?x=1\nhttp://h?q\n";
        let l = UrlList::read(text.as_bytes(), "t").unwrap();
        let paths: Vec<_> = l.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/a.jpg", "/b.png?w=1", "/c.webp?x=1", "/?q"]);
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let err = UrlList::read("/a\nnot a path\n".as_bytes(), "list.txt").unwrap_err();
        assert_eq!(
            err.to_string(),
            "list.txt:2: not a path or URL: \"not a path\""
        );
    }

    #[test]
    fn csv_round_trip() {
        let l = UrlList {
            entries: vec![
                UrlEntry {
                    path: "/a,b.jpg?x=\"1\"".into(),
                    count: 10,
                    bytes: Some(1234),
                    first_seen: Some("2024-03-12T10:00:01Z".into()),
                    last_seen: Some("2024-03-13T10:00:01Z".into()),
                },
                UrlEntry {
                    path: "/c%20d.png".into(),
                    count: 3,
                    bytes: None,
                    first_seen: None,
                    last_seen: None,
                },
            ],
        };
        let mut buf = Vec::new();
        l.write_csv(&mut buf).unwrap();
        assert!(buf.starts_with(CSV_HEADER.as_bytes()));
        let back = UrlList::read(buf.as_slice(), "t").unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn csv_bad_count() {
        let err = UrlList::read("path,count\n/a,x\n".as_bytes(), "u.csv").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("u.csv:2: count is not a whole number"),
            "{err}"
        );
    }

    #[test]
    fn shuffled_sweep_visits_each_once() {
        let l = UrlList::from_paths((0..1000).map(|i| format!("/{i}")));
        let p = Picker::new(&l, Order::Shuffled, 7, true);
        let mut seen: Vec<usize> = (0..1000).map(|j| p.pick(j)).collect();
        assert_ne!(seen[..10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn weighted_follows_counts() {
        let mut l = UrlList::from_paths(["/hot", "/warm", "/cold"]);
        l.entries[0].count = 70;
        l.entries[1].count = 20;
        l.entries[2].count = 10;
        let p = Picker::new(&l, Order::Weighted, 1, false);
        let mut n = [0u32; 3];
        for j in 0..100_000 {
            n[p.pick(j)] += 1;
        }
        assert!((69_000..71_000).contains(&n[0]), "{n:?}");
        assert!((19_000..21_000).contains(&n[1]), "{n:?}");
        assert!((9_000..11_000).contains(&n[2]), "{n:?}");
    }
}
