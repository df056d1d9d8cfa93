//! `docs/clinical/` and `docs/seed/` are copies of the shared specification
//! (`../shared/clinical/`, `../shared/seed/`, relative paths kept), so a reader of the
//! repository has the file every comment cites. This test says when a copy differs from
//! its source.
//!
//! Where the source is: `DVT_CDS_SHARED` (a directory holding `clinical/` and `seed/`),
//! else `../shared` beside the repository, else `/work/shared` (the development machine,
//! where a clone such as `/tmp/ci-clone` has no `../shared`). When none exists the test
//! FAILS, saying where it looked: a comparison that could not be made is not a pass.
//! `DVT_CDS_SHARED=none` states on purpose that there is no source to compare with; the
//! test then passes and prints that it compared nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The copied folders, by their path under the source (and under `docs/`).
const COPIED: [&str; 2] = ["clinical", "seed"];
const SHARED_VAR: &str = "DVT_CDS_SHARED";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the shared specification is, or why none is compared.
enum Source {
    At(PathBuf),
    /// `DVT_CDS_SHARED=none`: the caller states there is no source.
    DeclaredNone,
    /// No source found: every place looked at.
    NotFound(Vec<PathBuf>),
}

fn source(var: Option<String>, candidates: &[PathBuf]) -> Result<Source, String> {
    match var.as_deref() {
        Some("none") => return Ok(Source::DeclaredNone),
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            // A mistyped variable must not pass silently.
            return if dir.join("clinical").is_dir() {
                Ok(Source::At(dir))
            } else {
                Err(format!(
                    "{SHARED_VAR}={}: no clinical/ folder there",
                    dir.display()
                ))
            };
        }
        _ => {}
    }
    Ok(candidates
        .iter()
        .find(|d| d.join("clinical").is_dir())
        .map_or_else(
            || Source::NotFound(candidates.to_vec()),
            |d| Source::At(d.clone()),
        ))
}

/// Every file under `dir`, as paths relative to it.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// Every difference between the copies under `docs` and the sources under `shared`:
/// a file missing from either side, or with other bytes.
fn differences(shared: &Path, docs: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for folder in COPIED {
        let (from, to) = (shared.join(folder), docs.join(folder));
        let (theirs, ours) = (files(&from), files(&to));
        for f in theirs.union(&ours) {
            let name = Path::new(folder).join(f);
            match (theirs.contains(f), ours.contains(f)) {
                (true, false) => out.push(format!("{}: not copied", name.display())),
                (false, true) => out.push(format!("{}: not in the source", name.display())),
                _ => {
                    if std::fs::read(from.join(f)).ok() != std::fs::read(to.join(f)).ok() {
                        out.push(format!("{}: differs from the source", name.display()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_spec_copies_in_docs_equal_the_shared_spec() {
    let candidates = [repo().join("../shared"), PathBuf::from("/work/shared")];
    let shared = match source(std::env::var(SHARED_VAR).ok(), &candidates) {
        Err(e) => panic!("{e}"),
        Ok(Source::DeclaredNone) => {
            eprintln!("not compared: {SHARED_VAR}=none (docs/clinical and docs/seed unchecked)");
            return;
        }
        Ok(Source::NotFound(looked)) => panic!(
            "could not compare docs/clinical and docs/seed with the shared specification: \
             no clinical/ folder in {}. Set {SHARED_VAR}=DIR (the folder holding clinical/ \
             and seed/), or {SHARED_VAR}=none to state there is none",
            looked
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ok(Source::At(dir)) => dir,
    };
    let diffs = differences(&shared, &repo().join("docs"));
    assert!(
        diffs.is_empty(),
        "docs/ differs from {}:\n  {}\nRefresh with `cp -p {0}/clinical/* docs/clinical/ && \
         cp -p {0}/seed/* docs/seed/` (and review what changed: the code cites its sections)",
        shared.display(),
        diffs.join("\n  ")
    );
}

#[test]
fn the_copies_hold_the_model_and_its_codes() {
    for f in [
        "docs/clinical/dvt-model.md",
        "docs/clinical/codes.tsv",
        "docs/seed",
    ] {
        assert!(repo().join(f).exists(), "{f} is missing");
    }
}

// ---- the comparison itself can fail ----

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn a_changed_missing_or_extra_copy_is_named() {
    let t = tempfile::tempdir().unwrap();
    let (shared, docs) = (t.path().join("shared"), t.path().join("docs"));
    for d in [&shared, &docs] {
        write(d, "clinical/dvt-model.md", "§1");
        write(d, "seed/a.txt", "a");
    }
    assert_eq!(differences(&shared, &docs), Vec::<String>::new());

    write(&docs, "clinical/dvt-model.md", "§1 edited");
    write(&shared, "clinical/codes.tsv", "code");
    write(&docs, "seed/b.txt", "b");
    assert_eq!(
        differences(&shared, &docs),
        [
            "clinical/codes.tsv: not copied",
            "clinical/dvt-model.md: differs from the source",
            "seed/b.txt: not in the source",
        ]
    );
}

#[test]
fn no_source_is_not_a_pass_unless_declared() {
    let t = tempfile::tempdir().unwrap();
    let nowhere = [t.path().join("absent")];
    assert!(matches!(source(None, &nowhere), Ok(Source::NotFound(l)) if l.len() == 1));
    assert!(matches!(
        source(Some("none".into()), &nowhere),
        Ok(Source::DeclaredNone)
    ));
    // A variable naming a folder without clinical/ is an error, not a fallback.
    assert!(source(Some(t.path().display().to_string()), &nowhere).is_err());
    std::fs::create_dir(t.path().join("clinical")).unwrap();
    assert!(matches!(
        source(Some(t.path().display().to_string()), &nowhere),
        Ok(Source::At(d)) if d == t.path()
    ));
}
