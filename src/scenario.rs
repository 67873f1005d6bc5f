//! Scenario files (scenarios/*.toml): everything `run` needs, each field overridable by a flag.
//! Unknown keys and bad values are errors that name the file, line and key (toml's spans).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::cache_status::CacheClass;
use crate::engine::h1::Pin;
use crate::engine::schedule::Stage;
use crate::threshold::Threshold;
use crate::urls::Order;

/// A duration written as `500ms`, `5m`, `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("bad duration {s:?}: {e}")))
    }
}

/// A duration that must be more than zero (a run of `0s` or a timeout of `0s` is a mistake).
fn de_positive_dur<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
    let v = Dur::deserialize(d)?;
    if v.0.is_zero() {
        return Err(serde::de::Error::custom("must be more than 0"));
    }
    Ok(Some(v))
}

/// A count that must be at least 1.
fn de_nonzero<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default + PartialEq,
{
    let v = T::deserialize(d)?;
    if v == T::default() {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(Some(v))
}

/// A number that must be finite and more than zero; `what(v)` says why when it is not.
fn de_positive<'de, D: Deserializer<'de>>(
    d: D,
    what: impl Fn(f64) -> String,
) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(serde::de::Error::custom(what(v)));
    }
    Ok(Some(v))
}

/// A rate in requests per second.
fn de_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    de_positive(d, |v| {
        format!("rate {v}: must be more than 0 requests per second")
    })
}

/// A trace's replay speed.
fn de_speed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    de_positive(d, |v| {
        format!("speed {v}: must be more than 0 (2.0 replays twice as fast)")
    })
}

fn de_retries<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match u8::deserialize(d)? {
        n @ (0 | 1) => Ok(Some(n)),
        n => Err(serde::de::Error::custom(format!(
            "retries {n}: 0 or 1 (only a request whose reused connection closed before \
             answering is resent, and once)"
        ))),
    }
}

fn de_connect_to<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Pin>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| Pin::connect_to(s).map_err(serde::de::Error::custom))
        .collect()
}

fn de_resolve<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Pin>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| Pin::resolve(s).map_err(serde::de::Error::custom))
        .collect()
}

fn de_connections<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "connections 0: at least one (HTTP/2 connections a target)",
        )),
        n => Ok(Some(n)),
    }
}

fn de_stages<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Stage>>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| s.parse::<Stage>().map_err(serde::de::Error::custom))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn de_thresholds<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Threshold>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| s.parse::<Threshold>().map_err(serde::de::Error::custom))
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Option<String>,
    /// URL list, relative to the scenario file
    pub urls: Option<PathBuf>,
    /// or a trace (`extract --trace`) replayed at its own pacing, sped up by `speed`
    pub trace: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_speed")]
    pub speed: Option<f64>,
    pub order: Option<Order>,
    pub seed: Option<u64>,
    pub region: Option<String>,
    /// name -> base URL
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
    #[serde(default)]
    pub load: Load,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub cache: Cache,
    #[serde(default, deserialize_with = "de_thresholds")]
    pub thresholds: Vec<Threshold>,
    #[serde(default)]
    pub output: Output,
    /// where the file was read from (relative paths resolve against its folder)
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default, deserialize_with = "de_rate")]
    pub rate: Option<f64>,
    #[serde(default, deserialize_with = "de_stages")]
    pub stages: Option<Vec<Stage>>,
    #[serde(default, deserialize_with = "de_nonzero")]
    pub concurrency: Option<usize>,
    pub think: Option<Dur>,
    #[serde(default, deserialize_with = "de_positive_dur")]
    pub duration: Option<Dur>,
    #[serde(default, deserialize_with = "de_nonzero")]
    pub requests: Option<u64>,
    pub sweep: Option<bool>,
    #[serde(default, deserialize_with = "de_nonzero")]
    pub max_in_flight: Option<usize>,
    #[serde(default, deserialize_with = "de_nonzero")]
    pub threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    #[serde(default, deserialize_with = "de_positive_dur")]
    pub timeout: Option<Dur>,
    #[serde(default, deserialize_with = "de_positive_dur")]
    pub connect_timeout: Option<Dur>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub keepalive: Option<bool>,
    /// 0 or 1: see `run --retries`
    #[serde(default, deserialize_with = "de_retries")]
    pub retries: Option<u8>,
    /// "GET" (default) or "HEAD"
    pub method: Option<String>,
    /// pinning, as `run --connect-to` and `--resolve` (curl's forms); a flag for the same host
    /// and port wins
    #[serde(default, deserialize_with = "de_connect_to")]
    pub connect_to: Vec<crate::engine::h1::Pin>,
    #[serde(default, deserialize_with = "de_resolve")]
    pub resolve: Vec<crate::engine::h1::Pin>,
    /// HTTP/2 (`run --http2`), over this many connections a target (`--connections`)
    pub http2: Option<bool>,
    #[serde(default, deserialize_with = "de_connections")]
    pub connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub age_fallback: Option<bool>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// where the POP is named: `{ header = "X-Edge-Location", match = "^([A-Z]{3})" }`
    #[serde(default)]
    pub pops: Vec<PopRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopRule {
    pub header: String,
    #[serde(rename = "match", deserialize_with = "de_regex")]
    pub pattern: regex::Regex,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub header: String,
    #[serde(rename = "match", deserialize_with = "de_regex")]
    pub pattern: regex::Regex,
    #[serde(deserialize_with = "de_class")]
    pub class: CacheClass,
}

fn de_regex<'de, D: Deserializer<'de>>(d: D) -> Result<regex::Regex, D::Error> {
    let s = String::deserialize(d)?;
    regex::Regex::new(&s).map_err(|e| serde::de::Error::custom(format!("bad regex {s:?}: {e}")))
}

fn de_class<'de, D: Deserializer<'de>>(d: D) -> Result<CacheClass, D::Error> {
    let s = String::deserialize(d)?;
    CacheClass::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown cache class {s:?} (hit, stale_hit, revalidated, miss, pass, synthetic, error, unknown)"
        ))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub dir: Option<PathBuf>,
    pub samples: Option<bool>,
    pub interval: Option<Dur>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path}: {msg}")]
    Parse { path: String, msg: String },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: p.clone(),
            source,
        })?;
        let mut s = Scenario::parse(&text, &p)?;
        s.path = Some(path.to_path_buf());
        Ok(s)
    }

    /// Errors name the line, column and key, but never quote the file's text: a scenario holds
    /// header values and target URLs that may be secrets.
    pub fn parse(text: &str, name: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let at = e.span().map_or(0, |s| s.start).min(text.len());
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            // the key of the value at fault, from its line (`key = value`): a bare key only,
            // so that nothing else of the line is ever shown
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let key = (before[line_start..].split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| {
                    !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
            let msg = crate::guard::redact::text(e.message().trim_end());
            ScenarioError::Parse {
                path: name.to_string(),
                msg: match key {
                    Some(k) if !msg.contains(k) => {
                        format!("line {line}, column {col}: key `{k}`: {msg}")
                    }
                    _ => format!("line {line}, column {col}: {msg}"),
                },
            }
        })
    }

    /// A path from the scenario, resolved against the scenario's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        match self.path.as_ref().and_then(|s| s.parent()) {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scenario() {
        let s = Scenario::parse(
            r#"
name = "cutover"
urls = "urls.csv"
order = "weighted"
[targets]
fastly = "https://images.example.com"
[load]
stages = ["0->2000/60s", "2000/5m"]
max_in_flight = 500
[http]
timeout = "5s"
headers = { Accept = "image/avif,image/webp" }
[cache]
rules = [{ header = "X-My-Cache", match = "^HIT", class = "hit" }]
thresholds = ["miss.p99<150ms"]
[output]
interval = "1s"
"#,
            "t.toml",
        );
        // `thresholds` inside [cache] is an unknown key of that table
        let e = s.unwrap_err().to_string();
        assert!(
            e.contains("t.toml") && e.contains("thresholds") && e.contains("line 15"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = Scenario::parse("name = \"x\"\n[load]\nrate = 10\nrat = 5\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.toml"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("rat"), "{e}");
    }

    #[test]
    fn bad_values_name_the_line() {
        let e = Scenario::parse("[load]\nduration = \"5 parsecs\"\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("bad duration"), "{e}");
        let e = Scenario::parse("thresholds = [\"p99 < 5\"]\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("needs a unit"), "{e}");
        let e = Scenario::parse("[load]\nstages = [\"fast/1s\"]\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("bad stage"), "{e}");
    }

    /// Zero and nonsense values are refused where they are written: file, line and key.
    #[test]
    fn zero_values_name_the_line_and_key() {
        for (text, line, key, says) in [
            (
                "[load]\nrate = 5\nduration = \"0s\"\n",
                3,
                "duration",
                "more than 0",
            ),
            ("[load]\nrequests = 0\n", 2, "requests", "at least 1"),
            (
                "[load]\n\nconcurrency = 0\n",
                3,
                "concurrency",
                "at least 1",
            ),
            (
                "[load]\nmax_in_flight = 0\n",
                2,
                "max_in_flight",
                "at least 1",
            ),
            ("[load]\nthreads = 0\n", 2, "threads", "at least 1"),
            ("[load]\nrate = 0\n", 2, "rate", "more than 0"),
            ("[load]\nrate = -3.5\n", 2, "rate", "more than 0"),
            ("[http]\ntimeout = \"0ms\"\n", 2, "timeout", "more than 0"),
            (
                "[http]\nconnect_timeout = \"0s\"\n",
                2,
                "connect_timeout",
                "more than 0",
            ),
            ("[http]\nretries = 3\n", 2, "retries", "0 or 1"),
        ] {
            let e = Scenario::parse(text, "z.toml").unwrap_err().to_string();
            assert!(
                e.contains("z.toml")
                    && e.contains(&format!("line {line}"))
                    && e.contains(key)
                    && e.contains(says),
                "{text:?}: {e}"
            );
        }
        // a think time of zero is the default, and allowed
        assert!(Scenario::parse("[load]\nthink = \"0s\"\n", "z.toml").is_ok());
    }

    #[test]
    fn good_scenario() {
        let s = Scenario::parse(
            "urls = \"u.txt\"\nthresholds = [\"miss.p99<150ms\", \"hit_ratio>=0.9\"]\n[targets]\na = \"http://127.0.0.1:1\"\n[load]\nrate = 100\nduration = \"2s\"\n[cache]\nrules = [{ header = \"X-My-Cache\", match = \"^HIT\", class = \"hit\" }]\n",
            "s.toml",
        )
        .unwrap();
        assert_eq!(s.thresholds.len(), 2);
        assert_eq!(s.load.duration, Some(Dur(Duration::from_secs(2))));
        assert_eq!(s.cache.rules[0].class, CacheClass::Hit);
        assert_eq!(s.targets["a"], "http://127.0.0.1:1");
    }
}
