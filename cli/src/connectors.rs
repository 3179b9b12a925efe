//! `switchyard connectors …`: what a connector author runs.
//!
//! - `check [PATH]`: validate a catalog (and the unified models beside it), every problem
//!   on its own line with file, line and field.
//! - `test [PATH]`: run every fixture (`fixtures/` beside the catalog) and print a diff for
//!   each mismatch; also fails when a mapping has no fixture.
//! - `map <connector> <event-file>`: print the unified event(s) one provider body becomes,
//!   the mapping playground.
//! - `docs [PATH] [--out DIR]`: write `connectors.md` and `unified.md`, the catalog's
//!   reference pages, and the README's catalog table, generated from the files (a test
//!   keeps the committed ones in step).
//! - `coverage [PATH] [--min N] [--gaps]`: per connector, how many of the provider's
//!   documented event types are mapped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use switchyard_connectors::fixtures::{self, map_body};
use switchyard_connectors::Catalog;

#[derive(Subcommand)]
pub enum ConnectorsCommand {
    /// Validate a catalog: every problem, one line each, with file, line and field.
    Check {
        #[arg(default_value = "connectors/catalog")]
        path: PathBuf,
    },
    /// Run the catalog's fixtures and print a diff for every mismatch.
    Test {
        #[arg(default_value = "connectors/catalog")]
        path: PathBuf,
        /// Only this connector's fixtures and mappings.
        #[arg(long)]
        connector: Option<String>,
        /// The fixtures folder; default: `fixtures/` beside the catalog.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Write docs/connectors.md, docs/unified.md and the README's catalog table.
    Docs {
        #[arg(default_value = "connectors/catalog")]
        path: PathBuf,
        /// Where the pages go.
        #[arg(long, default_value = "docs")]
        out: PathBuf,
        /// The README whose catalog table is rewritten.
        #[arg(long, default_value = "README.md")]
        readme: PathBuf,
    },
    /// Per connector: documented event types, mapped, passed through on purpose, gaps.
    Coverage {
        #[arg(default_value = "connectors/catalog")]
        path: PathBuf,
        /// Fail when a connector with documented types maps less than this share (%).
        #[arg(long)]
        min: Option<f64>,
        /// Also list each connector's gaps.
        #[arg(long)]
        gaps: bool,
    },
    /// Print the unified event(s) a provider body becomes.
    Map {
        /// Connector name, e.g. github.
        connector: String,
        /// The provider's request body; `-` for standard input.
        event_file: String,
        /// A request header the connector reads, e.g. `X-GitHub-Event: push` (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// The connector catalog.
        #[arg(long, default_value = "connectors/catalog")]
        catalog: PathBuf,
    },
}

pub fn run(command: ConnectorsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConnectorsCommand::Check { path } => check(&path),
        ConnectorsCommand::Test {
            path,
            connector,
            fixtures,
        } => test(&path, connector.as_deref(), fixtures),
        ConnectorsCommand::Map {
            connector,
            event_file,
            headers,
            catalog,
        } => map(&catalog, &connector, &event_file, &headers),
        ConnectorsCommand::Docs { path, out, readme } => docs(&path, &out, &readme),
        ConnectorsCommand::Coverage { path, min, gaps } => coverage(&path, min, gaps),
    }
}

fn coverage(path: &Path, min: Option<f64>, list_gaps: bool) -> anyhow::Result<ExitCode> {
    let catalog = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    switchyard_cli::outln!(
        "{:<20} {:>10} {:>7} {:>14} {:>5} {:>8}",
        "connector",
        "documented",
        "mapped",
        "passed through",
        "gaps",
        "mapped %"
    );
    let mut below = Vec::new();
    for name in catalog.names() {
        let r = catalog.get(name).expect("a listed connector").coverage_report();
        if let Some(why) = &r.none {
            switchyard_cli::outln!("{:<20} n/a: {why}", r.connector);
            continue;
        }
        switchyard_cli::outln!(
            "{:<20} {:>10} {:>7} {:>14} {:>5} {:>8}",
            r.connector,
            r.documented,
            r.mapped,
            r.passed_through,
            r.gaps.len(),
            r.percent_text()
        );
        if list_gaps && !r.gaps.is_empty() {
            switchyard_cli::outln!("    gaps: {}", r.gaps.join(", "));
        }
        if let (Some(min), Some(p)) = (min, r.percent()) {
            if p < min {
                below.push(r.connector.clone());
            }
        }
    }
    if !below.is_empty() {
        eprintln!(
            "below {}: {}; map their gaps, or pass a type through with its reason in [coverage] passed_through",
            min.unwrap_or_default(),
            below.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn docs(path: &Path, out: &Path, readme: &Path) -> anyhow::Result<ExitCode> {
    let catalog = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let pages = switchyard_connectors::docs::render(&catalog, &Catalog::models_dir(path))
        .map_err(anyhow::Error::msg)
        .context("reading the unified models")?;
    for (name, text) in [("connectors.md", &pages.connectors), ("unified.md", &pages.unified)] {
        let file = out.join(name);
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        switchyard_cli::outln!("wrote {}", file.display());
    }
    let text = std::fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let Some(spliced) = switchyard_connectors::docs::splice_readme(&text, &pages.readme_table) else {
        bail!(
            "{} has no catalog table markers: put the lines {:?} and {:?} where the table goes",
            readme.display(),
            switchyard_connectors::docs::README_BEGIN,
            switchyard_connectors::docs::README_END
        );
    };
    std::fs::write(readme, spliced).with_context(|| format!("writing {}", readme.display()))?;
    switchyard_cli::outln!("wrote the catalog table of {}", readme.display());
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> Result<Catalog, ExitCode> {
    Catalog::load_dir(path).map_err(|e| {
        eprint!("{e}");
        ExitCode::FAILURE
    })
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let catalog = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    switchyard_cli::outln!(
        "{}: {} connector(s) and {} unified type(s), all valid",
        path.display(),
        catalog.len(),
        catalog.models().types().count()
    );
    Ok(ExitCode::SUCCESS)
}

fn test(path: &Path, only: Option<&str>, fixtures_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let catalog = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Some(name) = only.filter(|n| catalog.get(n).is_none()) {
        bail!(
            "unknown connector {name:?} (known: {})",
            catalog.names().collect::<Vec<_>>().join(", ")
        );
    }
    let dir = fixtures_dir.unwrap_or_else(|| fixtures::fixtures_dir(path));
    let report = fixtures::run_dir(&catalog, &dir, only);
    let mut failed = 0;
    for r in &report.results {
        if r.problems.is_empty() {
            switchyard_cli::outln!("ok    {}", r.path.display());
        } else {
            failed += 1;
            switchyard_cli::outln!("FAIL  {}", r.path.display());
            for p in &r.problems {
                switchyard_cli::outln!("        {p}");
            }
        }
    }
    for p in &report.problems {
        switchyard_cli::outln!("error {p}");
    }
    switchyard_cli::outln!(
        "{} fixture(s): {} passed, {failed} failed; {} other problem(s)",
        report.results.len(),
        report.results.len() - failed,
        report.problems.len()
    );
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn map(catalog_dir: &Path, name: &str, event_file: &str, headers: &[String]) -> anyhow::Result<ExitCode> {
    let catalog = match load(catalog_dir) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(connector) = catalog.get(name) else {
        bail!(
            "unknown connector {name:?} (known: {})",
            catalog.names().collect::<Vec<_>>().join(", ")
        );
    };
    let body = crate::read_body(event_file)?;
    let mut map = http::HeaderMap::new();
    for h in headers {
        let Some((n, v)) = h.split_once(':') else {
            bail!("--header {h:?}: write it as \"Name: value\"");
        };
        let n = http::HeaderName::try_from(n.trim()).with_context(|| format!("--header {h:?}"))?;
        let v = http::HeaderValue::try_from(v.trim()).with_context(|| format!("--header {h:?}"))?;
        map.insert(n, v);
    }
    let events = match map_body(&catalog, connector, &map, &body) {
        Ok(e) => e,
        Err(e) => bail!("the {name} connector cannot read the events of this body: {e}"),
    };
    let mut ok = true;
    for event in &events {
        switchyard_cli::outln!("{}", serde_json::to_string_pretty(&event.to_json())?);
        ok &= event.outcome.is_ok() && event.schema_problems.is_empty();
        for p in &event.schema_problems {
            eprintln!("not valid against its unified model: data{p}");
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
