//! Names that become file names or S3 keys: labels (`--region`, `--run-id`), the files a
//! MANIFEST.json may list, the region folders found under a run's S3 prefix. A downloaded
//! manifest is untrusted input: it may name only plain file names from the known set, so nothing
//! read from S3 can write outside the output folder, and `upload` reads nothing outside its own.

/// A label: 1-128 of `[A-Za-z0-9._-]`, not `.` or `..`. `what` names the flag in the error.
pub fn label(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {:?}: use 1-128 letters, digits, '.', '_' and '-' (not \".\" or \"..\")",
            super::quote::escape(s)
        ))
    }
}

/// Whether `name` may be a file of a results directory: one of `known`, which are plain names
/// (the check is by equality, so `../x`, `/x`, `a/b` and NUL bytes never pass).
pub fn results_file(name: &str, known: &[&str]) -> Result<(), String> {
    if known.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "names file {:?}, which is not a results file ({})",
            super::quote::escape(name),
            known.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cannot_be_paths_or_keys_of_their_own() {
        for ok in ["eu-west-1", "20261126T120000Z-1a2b", "run_1.a", "A"] {
            assert!(label("--region", ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a\nb",
            "a b",
            "a\0b",
            "é",
            long.as_str(),
        ] {
            let e = label("--run-id", bad).unwrap_err();
            assert!(e.starts_with("--run-id"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn manifest_names_outside_the_known_set_are_refused() {
        let known = ["summary.json", "latency.hlog"];
        assert!(results_file("summary.json", &known).is_ok());
        for bad in [
            "../../x",
            "/tmp/x",
            "a/summary.json",
            "summary.json\0",
            "..",
            "",
        ] {
            assert!(results_file(bad, &known).is_err(), "{bad:?}");
        }
    }
}
