//! Keeps ARCHITECTURE.md true: the rooms it lists are the modules under src/, each room imports
//! only rooms below it, the README's Layout section names every room, every file opens with a
//! `//!` doc, and a `pub` item has a reader outside its room (otherwise it is `pub(crate)` or
//! less, so the compiler reports it when it goes dead).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rs_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The rooms of ARCHITECTURE.md, top to bottom.
fn rooms() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text.find("<!-- rooms:").expect("the rooms marker");
    let block = &text[start..];
    let open = block.find("```text\n").expect("the rooms block") + "```text\n".len();
    let close = block[open..].find("```").unwrap() + open;
    block[open..close]
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The room a source file belongs to: its first path component under src/.
fn room_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Code without comments (line comments and doc comments; strings are kept).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let t = l.trim_start();
        (!t.starts_with("//")).then_some((i + 1, l))
    })
}

/// The rooms a line names through `crate::` (also in a `use crate::{a::x, b}` group, whose
/// lines may follow; `$crate::` is a macro's, `crate::*` names every room).
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if !rest[..i].ends_with('$') {
            if let Some(group) = after.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for part in inner.split(',') {
                    let name: String = (part.trim().chars())
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
            } else if after.starts_with('*') {
                out.push("*".into());
            } else {
                let name: String = (after.chars())
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
        rest = after;
    }
    out
}

#[test]
fn rooms_import_only_rooms_below_them() {
    let rooms = rooms();
    let src: BTreeSet<String> = rs_files(&root().join("src"))
        .iter()
        .filter_map(|f| room_of(f))
        .collect();
    let listed: BTreeSet<String> = rooms.iter().cloned().collect();
    assert_eq!(src, listed, "ARCHITECTURE.md's rooms and src/ differ");
    let mut wrong = Vec::new();
    for f in rs_files(&root().join("src")) {
        let Some(room) = room_of(&f) else { continue };
        let me = rooms.iter().position(|r| *r == room).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in code_lines(&text) {
            for r in crate_refs(line) {
                if r == "*" {
                    wrong.push(format!(
                        "{}:{n}: a glob import of the crate root",
                        f.display()
                    ));
                }
                match rooms.iter().position(|x| *x == r) {
                    Some(i) if i < me => wrong.push(format!(
                        "{}:{n}: {room} imports {r}, a room above it",
                        f.display()
                    )),
                    _ => {}
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_file_says_what_it_owns_and_the_readme_names_every_room() {
    for f in rs_files(&root().join("src")) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("//!"), "{} has no //! doc", f.display());
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let layout = &readme[readme.find("## Layout").expect("a Layout section")..];
    let layout = &layout[..layout[3..].find("\n## ").map_or(layout.len(), |i| i + 3)];
    for r in rooms() {
        assert!(
            layout.contains(&format!("`{r}")),
            "README's Layout does not name {r}"
        );
    }
}

/// `pub` functions, constants and statics (not `pub(crate)`), by name, with the room that
/// declares them. Types are left out: a type in a public signature must be public (the compiler
/// says so), whoever names it.
fn pub_items() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in rs_files(&root().join("src")) {
        let Some(room) = room_of(&f) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in code_lines(&text) {
            let t = line.trim_start();
            let Some(rest) = t.strip_prefix("pub ") else {
                continue;
            };
            let rest = rest
                .trim_start_matches("async ")
                .trim_start_matches("unsafe ");
            // `pub const fn name` is a fn; `pub const NAME` a const
            let rest = rest
                .strip_prefix("const fn ")
                .map_or(rest.to_string(), |r| format!("fn {r}"));
            let Some((kind, after)) = rest.split_once(' ') else {
                continue;
            };
            if !["fn", "const", "static"].contains(&kind) {
                continue;
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((room.clone(), name, format!("{}:{n}", f.display())));
        }
    }
    out
}

/// Whether `word` appears as a whole identifier in `text`. By name only: a common method name
/// (`new`, `parse`) always finds a reader somewhere, so the pub check is a lower bound.
fn is_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let id = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !id(before) && !id(after)
    })
}

#[test]
fn every_pub_item_has_a_reader_outside_its_room() {
    let mut readers: Vec<(Option<String>, String)> = Vec::new();
    for dir in ["src", "tests", "fuzz", "examples", "benches"] {
        for f in rs_files(&root().join(dir)) {
            let room = if dir == "src" { room_of(&f) } else { None };
            let text = std::fs::read_to_string(&f).unwrap();
            let code: String = code_lines(&text).map(|(_, l)| format!("{l}\n")).collect();
            readers.push((room, code));
        }
    }
    let lonely: Vec<String> = pub_items()
        .into_iter()
        .filter(|(room, name, _)| {
            !readers
                .iter()
                .any(|(r, code)| r.as_deref() != Some(room) && is_word(code, name))
        })
        .map(|(_, name, at)| format!("{at}: pub {name} has no reader outside its room"))
        .collect();
    assert!(
        lonely.is_empty(),
        "{}\n(make them pub(crate) or less)",
        lonely.join("\n")
    );
}

/// Every dependency in Cargo.toml's `[dependencies]` is used by the code (cargo-machete's check,
/// without installing it): its crate name appears in src/ or examples/.
#[test]
fn no_dependency_is_unused() {
    let toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let deps = &toml[toml.find("[dependencies]").unwrap() + "[dependencies]".len()..];
    let deps = &deps[..deps.find("\n[").unwrap_or(deps.len())];
    let mut code = String::new();
    for dir in ["src", "examples"] {
        for f in rs_files(&root().join(dir)) {
            code += &std::fs::read_to_string(f).unwrap();
        }
    }
    let unused: Vec<String> = deps
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| !k.is_empty() && !k.starts_with('#'))
        .filter(|k| !is_word(&code, &k.replace('-', "_")))
        .map(str::to_string)
        .collect();
    assert!(unused.is_empty(), "unused dependencies: {unused:?}");
}

#[test]
fn the_tidy_reader_sees_groups_globs_and_macros() {
    assert_eq!(
        crate_refs("use crate::{engine::x, urls};"),
        ["engine", "urls"]
    );
    assert_eq!(crate_refs("let x = crate::cmd::run::f();"), ["cmd"]);
    assert_eq!(crate_refs("$crate::foo"), Vec::<String>::new());
    assert_eq!(crate_refs("use crate::*;"), ["*"]);
}
