//! One file per subcommand: turns CLI args and scenario into a room's config and does the I/O.

pub mod demo;
pub mod edge;
pub mod execute;
pub mod extract;
pub mod mirror;
pub mod observe;
pub mod report;
pub mod run;
pub mod s3;

/// An error in what the user gave us (flags, scenario, input files): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Stopped by Ctrl-C or SIGTERM before it was done: exit code 130; the message says what was
/// kept and how to resume.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

pub fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(msg.into()).into())
}

/// Exit codes.
pub(crate) const EXIT_OK: i32 = 0;
pub(crate) const EXIT_THRESHOLDS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 130;
/// mirror: the gate was never reached
pub(crate) const EXIT_GATE_NOT_REACHED: i32 = 3;

/// Parses "10s", "250ms", "1h30m", naming the flag on error.
pub fn duration(flag: &str, s: &str) -> anyhow::Result<std::time::Duration> {
    humantime::parse_duration(s.trim())
        .map_err(|e| UsageError(format!("{flag}: bad duration {s:?}: {e}")).into())
}

/// Ctrl-C and SIGTERM stop the run: a background thread waits for either.
pub(crate) fn on_signal(f: impl Fn() + Send + 'static) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(t) => t,
                        Err(_) => {
                            let _ = tokio::signal::ctrl_c().await;
                            f();
                            return;
                        }
                    };
                loop {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => f(),
                        _ = term.recv() => f(),
                    }
                }
            }
            #[cfg(not(unix))]
            loop {
                let _ = tokio::signal::ctrl_c().await;
                f();
            }
        });
    });
}
