//! `edgeload edge`: serve the simulated CDN edge until Ctrl-C.

use super::{EXIT_OK, UsageError, duration, usage};
use crate::cli::EdgeArgs;
use crate::edge::{self, Dialect, EdgeConfig, Faults, Latency};

/// "512M", "1G", "2GiB", "256MB", "1048576".
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .filter(|r| r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad size {s:?}: suffix K, M, G or T")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size {s:?}"))
}

pub fn config(a: &EdgeArgs) -> anyhow::Result<EdgeConfig> {
    let rate = |flag: &str, v: f64| -> anyhow::Result<f64> {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            usage(format!("{flag} {v}: a share between 0 and 1"))
        }
    };
    Ok(EdgeConfig {
        dialect: a
            .dialect
            .parse::<Dialect>()
            .map_err(|e| UsageError(format!("--dialect: {e}")))?,
        pop: a.pop.clone(),
        pop_delay: (a.pop_delay.iter())
            .map(|pd| {
                let (p, d) = pd.split_once('=').ok_or_else(|| {
                    UsageError(format!("--pop-delay {pd:?}: POP=DURATION, e.g. AMS=30ms"))
                })?;
                Ok((p.trim().to_string(), duration("--pop-delay", d)?))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        capacity_bytes: parse_bytes(&a.capacity_bytes)
            .map_err(|e| UsageError(format!("--capacity-bytes: {e}")))?,
        capacity_objects: a.capacity_objects.unwrap_or(usize::MAX),
        hit_latency: a
            .hit_latency
            .parse::<Latency>()
            .map_err(|e| UsageError(format!("--hit-latency: {e}")))?,
        miss_latency: a
            .miss_latency
            .parse::<Latency>()
            .map_err(|e| UsageError(format!("--miss-latency: {e}")))?,
        shield: a
            .shield
            .as_deref()
            .map(|l| {
                l.parse::<Latency>()
                    .map_err(|e| UsageError(format!("--shield: {e}")))
            })
            .transpose()?,
        seed: a.seed,
        h2_streams: a.h2_streams,
        access_log: a.access_log.clone(),
        tls: match (&a.cert, &a.key) {
            (Some(c), Some(k)) => Some(edge::tls::EdgeTls::from_files(c, k).map_err(UsageError)?),
            _ if a.tls || a.write_cert.is_some() || !a.tls_name.is_empty() => {
                let mut names: Vec<String> =
                    ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
                // the address it listens on, so that https://ADDR checks out
                let ip = a.listen.ip();
                if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
                    names.push(ip.to_string());
                }
                names.extend(a.tls_name.iter().cloned());
                Some(edge::tls::EdgeTls::generate(&names).map_err(UsageError)?)
            }
            _ => None,
        },
        faults: Faults {
            extra_delay: a
                .extra_delay
                .as_deref()
                .map(|d| duration("--extra-delay", d))
                .transpose()?
                .unwrap_or_default(),
            stall_after: a.stall_after,
            stall: duration("--stall", &a.stall)?,
            error_rate: rate("--error-rate", a.error_rate)?,
            reset_rate: rate("--reset-rate", a.reset_rate)?,
            drop_rate: rate("--drop-rate", a.drop_rate)?,
            slow_body: a
                .slow_body
                .as_deref()
                .map(|d| duration("--slow-body", d))
                .transpose()?,
        },
    })
}

pub fn run(a: EdgeArgs) -> anyhow::Result<i32> {
    let cfg = config(&a)?;
    let dialect = cfg.dialect;
    if let Some(f) = &a.write_cert
        && (a.cert.as_ref() == Some(f) || a.key.as_ref() == Some(f))
    {
        return super::usage(format!(
            "--write-cert {}: that is the --cert or --key file",
            f.display()
        ));
    }
    let pem = cfg.tls.as_ref().map(|t| t.cert_pem.clone());
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let h = edge::start(cfg, a.listen, a.threads)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", a.listen))?;
    // after the bind: an edge that cannot listen leaves a running one's certificate alone
    if let (Some(f), Some(pem)) = (&a.write_cert, pem) {
        crate::guard::atomic::write(f, pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("--write-cert {}: {e}", f.display()))?;
    }
    eprintln!(
        "edge listening on {scheme}://{} (dialect {}, stats at /_edge/stats); Ctrl-C stops it",
        h.addr,
        dialect.as_str()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    super::on_signal(move || {
        let _ = tx.send(());
    });
    let _ = rx.recv();
    let s = h.stats();
    eprintln!(
        "edge served {} requests: {} hits, {} misses, {:.1} MB",
        s.requests,
        s.hits,
        s.misses,
        s.bytes as f64 / 1e6
    );
    h.shutdown();
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(super::parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(super::parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(super::parse_bytes("256MB"), Ok(256 << 20));
        assert!(super::parse_bytes("256B").is_err());
        assert_eq!(super::parse_bytes("1000"), Ok(1000));
        assert!(super::parse_bytes("1X").is_err());
        assert!(super::parse_bytes("lots").is_err());
    }
}
