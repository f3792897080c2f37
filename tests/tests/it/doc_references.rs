//! The repository explains itself: every document a file points to is in the repository.
//!
//! Walks the files git tracks (plus new ones it does not ignore) and checks two kinds of pointer:
//! - a `§` must follow the name of a document in the repository (`ARCHITECTURE.md §Invariants`);
//!   a bare section number, or one of a document that is not here, points to text a maintainer
//!   cannot read;
//! - every `*.md` document a file names must exist, resolved from the naming file's directory or
//!   one of its ancestors up to the root (so `README.md` in `bin/src/` is the root's, and
//!   `../shared/design.md` is outside), and a section named with it — `README.md#settings`,
//!   `README.md, "Settings"` or `README.md's "Settings"` on the same line — must be one of its
//!   headings.
//!
//! And ARCHITECTURE.md's invariants table names only tests and files that exist, so a renamed test
//! cannot leave an invariant pointing at nothing.
//!
//! This file holds the bad examples the check must catch, so it is the one file not checked.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate is `tests/` in it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

/// The repository's text files by path relative to the root: what git tracks, plus untracked files
/// it does not ignore (so a new file is checked before it is committed).
fn repository_files(root: &Path) -> BTreeMap<String, String> {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let names: Vec<String> = match listed {
        Ok(out) if out.status.success() => out
            .stdout
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect(),
        // The check must not pass for want of git: the repository is always a git checkout.
        other => panic!("`git ls-files` failed in {}: {other:?}", root.display()),
    };
    names
        .into_iter()
        // Deleted but not yet committed files are still listed by --cached; binary files have no
        // pointers to check.
        .filter_map(|name| {
            let text = std::fs::read_to_string(root.join(&name)).ok()?;
            Some((name, text))
        })
        .collect()
}

/// `path` joined onto `dir` with `.` and `..` resolved; `None` if it climbs above the root.
fn join_inside(dir: &Path, path: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    for part in Path::new(path).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// Where document `name`, mentioned in `file`, is in the repository: tried from the file's own
/// directory, then each ancestor up to the root. A leading `/` is read as relative too
/// (`concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md")`), so `/work/shared/x.md` still fails.
fn resolve(files: &BTreeMap<String, String>, file: &str, name: &str) -> Option<String> {
    let name = name.trim_start_matches('/');
    let mut dir = Path::new(file).parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        if let Some(candidate) = join_inside(&d, name) {
            let candidate = candidate.to_string_lossy().into_owned();
            if files.contains_key(&candidate) {
                return Some(candidate);
            }
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    None
}

/// The document names (`*.md`) on a line, each with the text that follows it. URLs and globs are
/// not pointers into the repository and are left out.
fn md_names(line: &str) -> Vec<(&str, &str)> {
    let is_path = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let mut names = Vec::new();
    for (at, _) in line.match_indices(".md") {
        let end = at + 3;
        if line[end..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `.mdx`, `.md_old`: another word
        }
        let start = line[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_path(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let name = &line[start..end];
        let word_start = line[..start]
            .rfind(char::is_whitespace)
            .map_or(0, |i| i + 1);
        let word = &line[word_start..end];
        if name == ".md" || word.contains("://") || line[..start].ends_with('*') {
            continue;
        }
        names.push((name, &line[end..]));
    }
    names
}

/// The section a pointer names right after a document: `#anchor`, `, "Heading"` or
/// `'s "Heading"`.
enum Section<'a> {
    Anchor(&'a str),
    Heading(&'a str),
}

fn section_after(rest: &str) -> Option<Section<'_>> {
    if let Some(anchor) = rest.strip_prefix('#') {
        let end = anchor
            .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(anchor.len());
        return Some(Section::Anchor(&anchor[..end]));
    }
    let quoted = rest
        .strip_prefix(", \"")
        .or_else(|| rest.strip_prefix("'s \""))?;
    quoted.find('"').map(|end| Section::Heading(&quoted[..end]))
}

/// A markdown document's headings, as written and as GitHub anchors.
fn headings(text: &str) -> Vec<(String, String)> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim().to_owned();
        let anchor: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        out.push((title, anchor));
    }
    out
}

/// Every pointer in `files` that does not resolve inside them, as `path:line: problem`.
fn dangling_references(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, text) in files {
        for (n, line) in text.lines().enumerate() {
            let at = format!("{file}:{}", n + 1);
            for (name, rest) in md_names(line) {
                let Some(target) = resolve(files, file, name) else {
                    problems.push(format!("{at}: {name} is not in the repository: {line}"));
                    continue;
                };
                let known = headings(&files[&target]);
                match section_after(rest) {
                    Some(Section::Anchor(a)) if !known.iter().any(|(_, k)| k == a) => {
                        problems.push(format!("{at}: {target} has no heading for #{a}: {line}"))
                    }
                    Some(Section::Heading(h)) if !known.iter().any(|(t, _)| t == h) => {
                        problems.push(format!("{at}: {target} has no heading {h:?}: {line}"))
                    }
                    _ => {}
                }
            }
            for (at_sign, _) in line.match_indices('§') {
                let before = line[..at_sign].trim_end();
                let document = before
                    .rsplit(char::is_whitespace)
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches(['(', '[', '`', '"']);
                let resolves =
                    document.ends_with(".md") && resolve(files, file, document).is_some();
                if !resolves {
                    problems.push(format!(
                        "{at}: `§` must follow a document in the repository \
                         (`ARCHITECTURE.md §Invariants`), or go: {line}"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_document_and_section_the_repository_points_to_is_in_it() {
    let root = root();
    let mut files = repository_files(&root);
    assert!(
        files.contains_key("README.md") && files.contains_key("ARCHITECTURE.md"),
        "the walk found the repository's documents"
    );
    let this_file = "tests/tests/it/doc_references.rs";
    assert!(files.contains_key(this_file), "this file's path is right");
    files.remove(this_file);
    let problems = dangling_references(&files);
    assert!(
        problems.is_empty(),
        "pointers to documents that are not in the repository:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_pointers_outside_the_repository() {
    let files: BTreeMap<String, String> = [
        ("README.md", "# alsy\n## Settings\n## HTTP API\n"),
        (
            "app/src/lib.rs",
            "//! See design \u{a7}5.\n\
             //! §4 of the contract.\n\
             //! The rules of ../shared/style.md and /work/shared/design.md.\n\
             //! README.md, \"Logs\" and README.md#storage are gone.\n\
             //! Fine: README.md §Settings, README.md's \"HTTP API\", ../README.md#settings,\n\
             //! README.md#http-api and https://example.com/other.md.\n",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let problems = dangling_references(&files);
    let lines: Vec<&str> = problems
        .iter()
        .map(|p| p.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        lines,
        [
            "app/src/lib.rs:1",
            "app/src/lib.rs:2",
            "app/src/lib.rs:3",
            "app/src/lib.rs:3",
            "app/src/lib.rs:4",
            "app/src/lib.rs:4",
        ],
        "{problems:#?}"
    );
}

/// The names in backticks in the "guarded by" column of ARCHITECTURE.md's invariants table that
/// are not in the code: test functions (`snake_case` with an underscore) and files (`*.rs`), found
/// by definition and by path suffix.
fn missing_guards(files: &BTreeMap<String, String>) -> Vec<String> {
    let Some(architecture) = files.get("ARCHITECTURE.md") else {
        return vec!["ARCHITECTURE.md is missing".to_owned()];
    };
    let table = architecture
        .split("\n## ")
        .find(|section| section.starts_with("Invariants"))
        .unwrap_or_default();
    let sources: Vec<(&String, &String)> = files
        .iter()
        .filter(|(path, _)| path.ends_with(".rs"))
        .collect();
    let mut missing = Vec::new();
    // The last column, "guarded by", of each row.
    for cell in table
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.trim_end().trim_end_matches('|').rsplit('|').next())
    {
        for (i, token) in cell.split('`').enumerate() {
            if i % 2 == 0 {
                continue; // outside backticks
            }
            if token.ends_with(".rs") {
                let named = sources
                    .iter()
                    .any(|(path, _)| path.ends_with(&format!("/{token}")) || *path == token);
                if !named {
                    missing.push(format!("no file {token}"));
                }
            } else if token.contains('_')
                && token
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                let defined = sources.iter().any(|(_, text)| {
                    text.match_indices(&format!("fn {token}")).any(|(at, m)| {
                        !text[at + m.len()..]
                            .starts_with(|c: char| c == '_' || c.is_ascii_alphanumeric())
                    })
                });
                if !defined {
                    missing.push(format!("no fn {token}"));
                }
            }
        }
    }
    missing
}

#[test]
fn every_test_the_invariants_table_names_exists() {
    let files = repository_files(&root());
    let missing = missing_guards(&files);
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's invariants name tests or files that are not in the code \
         (renamed? update the table):\n{}",
        missing.join("\n")
    );
}
