//! The workspace's manifests: every dependency a crate declares is used by that crate's
//! sources, so a dependency left behind by a change (and the compile time and supply
//! chain it brings) fails here, in CI, rather than lingering.
//!
//! "Used" means the crate's name appears as a path (`name::`) or in a `use`/`extern
//! crate` in the sources that can see it: `src/`, `build.rs` and, for dev-dependencies,
//! `tests/`, `benches/`, `examples/` and the folders of declared test targets as well. A dependency needed without being
//! named (a feature switch of another crate) would be listed under
//! `[package.metadata.switchyard] unnamed-dependencies`; none is today.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sources(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            out.push('\n');
        }
    }
}

fn names(table: Option<&toml::Value>) -> Vec<String> {
    table
        .and_then(|t| t.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

fn is_named(source: &str, dependency: &str) -> bool {
    let ident = dependency.replace('-', "_");
    [
        format!("{ident}::"),
        format!("use {ident};"),
        format!("use {ident} as"),
        format!("extern crate {ident}"),
    ]
    .iter()
    .any(|needle| {
        source.match_indices(needle.as_str()).any(|(at, _)| {
            // Not the tail of a longer name (`switchyard_core::` for `core::`).
            source[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
    })
}

#[test]
fn every_declared_dependency_is_used() {
    let root = workspace();
    let manifest: toml::Value = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members: Vec<String> = manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let mut unused = BTreeSet::new();
    for member in &members {
        let dir = root.join(member);
        let crate_manifest: toml::Value = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let allowed: BTreeSet<String> = crate_manifest
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("switchyard"))
            .and_then(|s| s.get("unnamed-dependencies"))
            .and_then(|l| l.as_array())
            .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let mut normal = String::new();
        sources(&dir.join("src"), &mut normal);
        if let Ok(build) = std::fs::read_to_string(dir.join("build.rs")) {
            normal.push_str(&build);
        }
        let mut dev = normal.clone();
        let targets = ["test", "bench", "example"].iter().flat_map(|kind| {
            crate_manifest
                .get(*kind)
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("path").and_then(|p| p.as_str()))
        });
        let folders: BTreeSet<PathBuf> = ["tests", "benches", "examples"]
            .iter()
            .map(|f| dir.join(f))
            .chain(targets.filter_map(|p| dir.join(p).parent().map(Path::to_path_buf)))
            .collect();
        for folder in folders {
            sources(&folder, &mut dev);
        }
        let declared = [
            (names(crate_manifest.get("dependencies")), &normal),
            (names(crate_manifest.get("build-dependencies")), &normal),
            (names(crate_manifest.get("dev-dependencies")), &dev),
        ];
        for (deps, source) in declared {
            for dep in deps {
                if !allowed.contains(&dep) && !is_named(source, &dep) {
                    unused.insert(format!("{member}: {dep}"));
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "these dependencies are declared but not used; remove them from the crate's Cargo.toml \
         (or, if one is needed without being named, list it under \
         [package.metadata.switchyard] unnamed-dependencies with why): {unused:#?}"
    );
}

#[test]
fn the_check_sees_names_only_as_whole_paths() {
    assert!(is_named("use serde::Deserialize;", "serde"));
    assert!(is_named("let x = hyper_util::rt::TokioIo::new(s);", "hyper-util"));
    assert!(!is_named("use switchyard_core::names;", "core"));
    assert!(!is_named("use serde_json::json;", "serde"));
}

/// Module path (`a::b`) of a source file under `src`.
fn module_of(src: &Path, file: &Path) -> (Vec<String>, bool) {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let is_root = matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main"));
    if is_root {
        parts.pop();
    }
    (parts, is_root)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `code` names through `crate::` or `super::`, as paths from the crate root.
fn named_modules(code: &str, module: &[String], is_root: bool) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let path_after = |at: usize| -> Vec<String> {
        code[at..]
            .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':'))
            .next()
            .unwrap_or_default()
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        out.insert(path_after(at + "crate::".len()));
    }
    for (at, _) in code.match_indices("super::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Vec<String> = module.to_vec();
        if is_root || !base.is_empty() {
            base.pop();
        }
        base.extend(path_after(at + "super::".len()));
        out.insert(base);
    }
    out
}

/// No two modules of a crate import each other: when two files need each other, the
/// piece they share belongs in a module below both (the guide's rule). Tests and
/// comments are not counted; a module and its own parent or child may.
#[test]
fn no_two_modules_import_each_other() {
    let root = workspace();
    let manifest: toml::Value = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let mut circles = Vec::new();
    for member in manifest["workspace"]["members"].as_array().unwrap() {
        let src = root.join(member.as_str().unwrap()).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut modules = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let (module, is_root) = module_of(&src, file);
            let named = named_modules(&code, &module, is_root);
            modules.push((module, named));
        }
        let known: BTreeSet<Vec<String>> = modules.iter().map(|(m, _)| m.clone()).collect();
        // The longest known module a path starts with.
        let resolve = |path: &Vec<String>| {
            (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|p| known.contains(p))
        };
        let edges: Vec<(Vec<String>, BTreeSet<Vec<String>>)> = modules
            .iter()
            .map(|(m, named)| (m.clone(), named.iter().filter_map(resolve).filter(|n| n != m).collect()))
            .collect();
        for (a, from_a) in &edges {
            for (b, from_b) in &edges {
                let related = a.starts_with(b) || b.starts_with(a);
                if a < b && !related && from_a.contains(b) && from_b.contains(a) {
                    circles.push(format!(
                        "{}: {} <-> {}",
                        member.as_str().unwrap(),
                        a.join("::"),
                        b.join("::")
                    ));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "these modules import each other; move what they share into a module below both: {circles:#?}"
    );
}
