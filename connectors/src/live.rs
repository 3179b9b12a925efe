//! The catalog a running binary uses, replaced whole when its files change.
//!
//! [`LiveCatalog::current`] hands out the catalog in force; [`LiveCatalog::reload`]
//! loads the folder again and swaps the new catalog in only if all of it is valid. An
//! invalid edit leaves the previous catalog in force and is reported, so a typo in one
//! file never takes connectors away from a running pipeline. Requests already holding
//! the previous catalog finish with it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::catalog::{Catalog, CatalogErrors};

pub struct LiveCatalog {
    dir: PathBuf,
    current: ArcSwap<Catalog>,
    /// What the folder looked like at the last load attempt.
    seen: Mutex<Fingerprint>,
}

/// Name, size and modification time of every file the catalog is read from.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl LiveCatalog {
    /// Load `dir`; an invalid catalog is refused whole.
    pub fn load(dir: &Path) -> Result<Self, CatalogErrors> {
        let seen = fingerprint(dir);
        let catalog = Catalog::load_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            current: ArcSwap::from_pointee(catalog),
            seen: Mutex::new(seen),
        })
    }

    /// A catalog known to be valid, for tests and tools.
    pub fn fixed(catalog: Catalog) -> Self {
        Self {
            dir: PathBuf::new(),
            current: ArcSwap::from_pointee(catalog),
            seen: Mutex::default(),
        }
    }

    /// The catalog in force.
    pub fn current(&self) -> Arc<Catalog> {
        self.current.load_full()
    }

    /// Load the folder again if any file changed (or always, with `force`), and swap the
    /// result in if it is valid: `Ok(Some(connectors))` when a new catalog is in force,
    /// `Ok(None)` when nothing changed, `Err` when the files are invalid (the previous
    /// catalog stays in force).
    pub fn reload(&self, force: bool) -> Result<Option<usize>, CatalogErrors> {
        if self.dir.as_os_str().is_empty() {
            return Ok(None);
        }
        let now = fingerprint(&self.dir);
        {
            let mut seen = self.seen.lock().expect("catalog fingerprint lock");
            if !force && *seen == now {
                return Ok(None);
            }
            *seen = now;
        }
        let c = Catalog::load_dir(&self.dir)?;
        let n = c.len();
        self.current.store(Arc::new(c));
        Ok(Some(n))
    }
}

/// The catalog folder's files and, beside it, the unified models' folder.
fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files = Vec::new();
    let unified = dir.parent().map(|p| p.join("unified"));
    for d in std::iter::once(dir.to_path_buf()).chain(unified) {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            if let Ok(meta) = e.metadata() {
                if meta.is_file() {
                    files.push((e.path(), meta.len(), meta.modified().ok()));
                }
            }
        }
    }
    files.sort();
    Fingerprint(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "acme"
title = "Acme"
[signature]
scheme = "token"
header = "X-Acme-Token"
[event]
id = { json = "id" }
type = { json = "type" }
"#;

    #[test]
    fn a_valid_edit_takes_effect_and_an_invalid_one_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("catalog");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("acme.toml"), GOOD).unwrap();
        let live = LiveCatalog::load(&dir).unwrap();
        assert_eq!(live.current().len(), 1);
        assert_eq!(live.reload(false).unwrap(), None);

        // A new connector file: in force after the reload.
        std::fs::write(dir.join("beta.toml"), GOOD.replace("acme", "beta")).unwrap();
        assert_eq!(live.reload(false).unwrap(), Some(2));
        assert!(live.current().get("beta").is_some());

        // A broken edit: rejected, the previous catalog stays.
        std::fs::write(dir.join("beta.toml"), "name = \"beta\"\nbogus = 1\n").unwrap();
        let e = live.reload(false).unwrap_err();
        assert!(e.to_string().contains("beta.toml"), "{e}");
        assert!(live.current().get("beta").is_some());
        assert_eq!(live.current().len(), 2);
    }
}
