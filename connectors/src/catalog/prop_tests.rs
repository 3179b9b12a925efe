//! Property tests of the connector-file loader: any text, the shipped files cut short,
//! with bytes flipped or lines dropped, and their TOML with any value put in any place.
//! Loading never panics; a file it refuses is refused with [`CatalogError`]s that each
//! name that file (and a line within it, where one is given) and say what is wrong.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use proptest::prelude::*;

use super::*;
use crate::signature::prop_tests::config;

fn catalog_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")
}

/// The shipped connector files, `(path, text)`.
static FILES: LazyLock<Vec<(PathBuf, String)>> = LazyLock::new(|| {
    let mut files: Vec<PathBuf> = std::fs::read_dir(catalog_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
});

static MODELS: LazyLock<UnifiedModels> =
    LazyLock::new(|| UnifiedModels::load_dir(&Catalog::models_dir(&catalog_dir())).unwrap());

/// Loads `text` as the file `path`: a connector, or errors that all name `path`.
fn check_load(path: &Path, text: &str) -> Result<(), TestCaseError> {
    match Catalog::from_sources_with_models(vec![(path.to_path_buf(), text.to_string())], MODELS.clone()) {
        Ok(c) => prop_assert_eq!(c.len(), 1),
        Err(CatalogErrors(errors)) => {
            prop_assert!(!errors.is_empty());
            let lines = text.lines().count().max(1);
            for e in &errors {
                prop_assert_eq!(&e.file, path, "{}", e);
                prop_assert!(!e.message.trim().is_empty(), "{}", e);
                prop_assert!(
                    e.line.is_none_or(|l| (1..=lines + 1).contains(&l)),
                    "{e} (of {lines} lines)"
                );
                prop_assert!(e.to_string().starts_with(&path.display().to_string()));
            }
        }
    }
    Ok(())
}

/// One of the shipped files, `(path, text)`.
fn shipped() -> impl Strategy<Value = (PathBuf, String)> {
    (0..FILES.len()).prop_map(|i| FILES[i].clone())
}

/// How a file's bytes are damaged.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(prop::sample::Index),
    Flip(Vec<(prop::sample::Index, u8)>),
    DropLine(prop::sample::Index),
    Insert(prop::sample::Index, String),
}

fn damage() -> impl Strategy<Value = Damage> {
    let junk = prop_oneof![
        prop::sample::select(vec![
            "[",
            "]]",
            "\"",
            "'''",
            "=",
            "\n[event]\n",
            "\nname = 1\n",
            "{",
            "\\u"
        ])
        .prop_map(String::from),
        any::<String>(),
    ];
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..4).prop_map(Damage::Flip),
        any::<prop::sample::Index>().prop_map(Damage::DropLine),
        (any::<prop::sample::Index>(), junk).prop_map(|(i, s)| Damage::Insert(i, s)),
    ]
}

fn apply(text: &str, d: &Damage) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    match d {
        Damage::Truncate(i) => b.truncate(i.index(b.len() + 1)),
        Damage::Flip(flips) => {
            for (i, x) in flips {
                let i = i.index(b.len());
                b[i] ^= x;
            }
        }
        Damage::DropLine(i) => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let drop = i.index(lines.len());
            b = lines
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != drop)
                .flat_map(|(_, l)| l.bytes())
                .collect();
        }
        Damage::Insert(i, s) => {
            let at = i.index(b.len() + 1);
            b.splice(at..at, s.bytes());
        }
    }
    b
}

/// Any TOML value, for putting in place of one of a file's values.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<String>().prop_map(toml::Value::String),
        "[a-z_.$\\[\\]0-9 ]{0,16}".prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
    ];
    leaf.prop_recursive(2, 6, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// Puts `new` in place of the `n`th value within `v` (tables and arrays included, in
/// document order), where there are more than `n`.
fn replace_nth(v: &mut toml::Value, n: &mut usize, new: &mut Option<toml::Value>) {
    let children: Vec<&mut toml::Value> = match v {
        toml::Value::Table(t) => t.iter_mut().map(|(_, v)| v).collect(),
        toml::Value::Array(a) => a.iter_mut().collect(),
        _ => return,
    };
    for c in children {
        if new.is_none() {
            return;
        }
        if *n == 0 {
            *c = new.take().expect("checked");
            return;
        }
        *n -= 1;
        replace_nth(c, n, new);
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Any text at all.
    #[test]
    fn any_text_loads_or_is_refused_naming_the_file(text in prop_oneof![any::<String>(), "[a-z_=\\[\\]\"{}., \n0-9]{0,200}"]) {
        check_load(Path::new("/catalog/any.toml"), &text)?;
    }

    /// A shipped file damaged: cut short, bytes flipped, a line dropped, text inserted.
    /// Bytes that are no longer UTF-8 are refused by the folder loader, naming the file.
    #[test]
    fn a_damaged_shipped_file_loads_or_is_refused_naming_it((path, text) in shipped(), d in damage()) {
        let bytes = apply(&text, &d);
        match String::from_utf8(bytes) {
            Ok(text) => check_load(&path, &text)?,
            Err(e) => {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join(path.file_name().unwrap());
                std::fs::write(&file, e.into_bytes()).unwrap();
                let errors = Catalog::load_dir(dir.path()).unwrap_err().0;
                prop_assert!(errors.iter().any(|e| e.file == file && e.message.starts_with("cannot read")), "{errors:?}");
            }
        }
    }

    /// A shipped file's TOML with one value (a table, an array, a leaf) replaced by any
    /// other: the loader's own checks, past the TOML syntax, meet every kind of value.
    #[test]
    fn a_shipped_file_with_any_value_anywhere_loads_or_is_refused_naming_it(
        (path, text) in shipped(),
        n in 0usize..400,
        value in toml_value(),
    ) {
        let mut doc: toml::Value = toml::from_str(&text).unwrap();
        replace_nth(&mut doc, &mut { n }, &mut Some(value));
        let Ok(text) = toml::to_string(&doc) else {
            return Ok(());
        };
        check_load(&path, &text)?;
    }
}
