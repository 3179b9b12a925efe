//! The files shipped in `deploy/` hold together with the binaries: the sample
//! configurations load and the production sample names every key there is; the S3
//! lifecycle rule expires the claim-checks after 7 days; and, where `kubectl` is
//! installed, every Kubernetes overlay renders with probes, disruption budgets and
//! service links off for each Deployment; every alert's runbook link names a section of
//! docs/operations.md; every dashboard query is valid PromQL (with promtool installed);
//! the systemd units verify and are hardened (with systemd-analyze installed); the
//! Dockerfile's stages and what its distroless, non-root runtime image must carry hold
//! together (without building it).
//! (`deploy/prometheus/` is checked by promtool in `make test`, and by
//! `metrics_names.rs` against the binaries.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use switchyard_core::config::Config;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(section, key)` of every `key = value` line; `commented` also counts `# key = value`
/// (keys a sample leaves to the environment, such as secrets). Sections come from
/// uncommented `[section]` headers only.
fn keys(toml: &str, commented: bool) -> BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for line in toml.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let line = match line.strip_prefix("# ") {
            Some(rest) if commented => rest,
            Some(_) => continue,
            None => line,
        };
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            out.insert((section.clone(), key.to_string()));
        }
    }
    out
}

#[test]
fn the_production_sample_configuration_loads_and_names_every_key() {
    let sample = read("deploy/systemd/switchyard.toml");
    // Connector secrets come from the environment in production; the test has none.
    let loadable = sample.replace("\"env:HUBSPOT_CLIENT_SECRET\"", "\"a-test-secret\"");
    let config = Config::from_toml(&loadable).unwrap_or_else(|e| panic!("deploy/systemd/switchyard.toml: {e}"));
    assert_eq!(config.nats.replicas, 3);

    let defaults = keys(switchyard_core::config::DEFAULTS, false);
    assert!(defaults.len() > 40, "too few keys read from the defaults: {defaults:?}");
    let documented = keys(&sample, true);
    let missing: Vec<String> = defaults
        .difference(&documented)
        .map(|(s, k)| if s.is_empty() { k.clone() } else { format!("{s}.{k}") })
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/systemd/switchyard.toml does not document these keys of core/config.default.toml \
         (add each with its default, unit and effect): {missing:?}"
    );
}

#[test]
fn the_kubernetes_configuration_loads() {
    let text = read("deploy/kubernetes/base/switchyard.toml");
    let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("deploy/kubernetes/base/switchyard.toml: {e}"));
    assert_eq!(config.nats.replicas, 3);
    assert_eq!(config.catalog, Path::new("/etc/switchyard/catalog"));
}

#[test]
fn the_s3_lifecycle_rule_expires_claim_checks_after_seven_days() {
    let rule: serde_json::Value = serde_json::from_str(&read("deploy/s3/lifecycle.json")).unwrap();
    let rules = rule["Rules"].as_array().expect("Rules");
    let raw = rules
        .iter()
        .find(|r| r["Filter"]["Prefix"] == "raw/")
        .expect("a rule for the raw/ prefix the ingress writes");
    assert_eq!(raw["Status"], "Enabled");
    assert_eq!(raw["Expiration"]["Days"], 7);
}

/// Renders each overlay with `kubectl kustomize` (skipped, saying so, without kubectl)
/// and checks what every Deployment must have.
#[test]
fn every_kubernetes_overlay_renders_with_probes_and_disruption_budgets() {
    let overlays = repo().join("deploy/kubernetes/overlays");
    let mut rendered = 0;
    for entry in std::fs::read_dir(&overlays).unwrap().flatten() {
        let out = match Command::new("kubectl").arg("kustomize").arg(entry.path()).output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("kubectl not installed: the Kubernetes overlays were not rendered");
                return;
            }
            Err(e) => panic!("running kubectl: {e}"),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            out.status.success(),
            "kubectl kustomize {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let yaml = String::from_utf8(out.stdout).unwrap();
        let count = |s: &str| yaml.lines().filter(|l| l.trim() == s).count();
        // Top-level kinds only (an HPA's scaleTargetRef says `kind: Deployment` too).
        let deployments = yaml.lines().filter(|l| *l == "kind: Deployment").count();
        assert_eq!(deployments, 3, "{name}");
        for must in [
            "kind: PodDisruptionBudget",
            "path: /readyz",
            "path: /healthz",
            "enableServiceLinks: false",
            "readOnlyRootFilesystem: true",
            "runAsNonRoot: true",
        ] {
            assert_eq!(count(must), 3, "{name}: `{must}` once per Deployment");
        }
        assert!(
            yaml.contains("name: switchyard-secrets"),
            "{name}: secrets from the Secret"
        );
        rendered += 1;
    }
    assert!(rendered >= 2, "expected the staging and production overlays");
}

/// Every `runbook:` link of the alert rules names a heading of docs/operations.md.
#[test]
fn every_alert_links_to_a_section_of_the_operations_guide() {
    let guide = read("docs/operations.md");
    let anchors: BTreeSet<String> = guide
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .map(github_anchor)
        .collect();
    let rules = read("deploy/prometheus/alerts.yml");
    let mut links = 0;
    for line in rules.lines() {
        let Some(link) = line.trim().strip_prefix("runbook: docs/operations.md#") else {
            continue;
        };
        assert!(
            anchors.contains(link),
            "alerts.yml links to #{link}, which docs/operations.md lacks"
        );
        links += 1;
    }
    assert!(links >= 15, "only {links} runbook links found");
    // The guide's own links between its sections.
    for part in guide.split("](#").skip(1) {
        let link = part.split(')').next().unwrap_or_default();
        assert!(
            anchors.contains(link),
            "docs/operations.md links to #{link}, which it lacks"
        );
    }
}

/// The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every query of the Grafana dashboard is valid PromQL: each becomes a recording rule
/// (template variables replaced by `.*`) that `promtool check rules` parses. Skipped,
/// saying so, without promtool (`deploy/local/install-deps` installs it).
#[test]
fn the_dashboard_queries_are_valid_promql() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana/switchyard.json")).unwrap();
    let mut exprs = Vec::new();
    crate::metrics_names::collect_exprs(&dashboard, &mut exprs);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for e in exprs
        .iter()
        .filter(|e| !e.starts_with("label_values(") && e.as_str() != "prometheus")
    {
        let promql = e.replace("$connector", ".*").replace("$tenant", ".*");
        // A JSON string is a valid YAML double-quoted scalar.
        rules.push_str(&format!(
            "      - record: dashboard_query_{n}\n        expr: {}\n",
            serde_json::json!(promql)
        ));
        n += 1;
    }
    assert!(n > 20, "only {n} dashboard queries found");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.yml");
    std::fs::write(&file, rules).unwrap();
    let out = match Command::new("promtool").arg("check").arg("rules").arg(&file).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("promtool not installed: the dashboard's queries were not checked");
            return;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    assert!(
        out.status.success(),
        "a dashboard query is not valid PromQL:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The systemd units are valid (`systemd-analyze verify`) and hardened: an exposure of
/// at most 2.0 in `systemd-analyze security` (0 is the most locked down, 10 the least).
/// The binaries' path is swapped for /bin/true, which verify needs to exist. Skipped,
/// saying so, without systemd-analyze.
#[test]
fn the_systemd_units_verify_and_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let mut units = 0;
    for entry in std::fs::read_dir(repo().join("deploy/systemd")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".service") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for must in [
            "EnvironmentFile=",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "DynamicUser=yes",
        ] {
            assert!(text.contains(must), "{name}: no {must}");
        }
        let bin = format!("/usr/local/bin/{}", name.trim_end_matches(".service"));
        assert!(text.contains(&format!("ExecStart={bin} ")), "{name} runs {bin}");
        let copy = dir.path().join(&name);
        std::fs::write(&copy, text.replace(&bin, "/bin/true")).unwrap();
        let verify = match Command::new("systemd-analyze").arg("verify").arg(&copy).output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("systemd-analyze not installed: the systemd units were not verified");
                return;
            }
            Err(e) => panic!("running systemd-analyze: {e}"),
        };
        let said = String::from_utf8_lossy(&verify.stderr);
        assert!(verify.status.success() && said.trim().is_empty(), "{name}: {said}");
        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            security.status.success(),
            "{name}: exposure over 2.0:\n{}",
            String::from_utf8_lossy(&security.stdout)
        );
        units += 1;
    }
    assert_eq!(units, 3, "one unit per binary");
}

/// The Dockerfile's shape, and what its runtime stage must provide, checked without a
/// container engine (none may be installed, and its base images are on registries a CI
/// machine may not reach): two stages; the runtime stage is distroless `cc` as a
/// non-root user; every binary built is copied out, and is one of the workspace's; the
/// catalog and models it copies exist. And the binaries need no shared library beyond
/// what `cc` images carry (glibc's libc, libm, the loader, libgcc_s): checked on this
/// test's own executable, which links the same crates as the binaries.
#[test]
fn the_dockerfile_copies_every_binary_into_a_distroless_non_root_image() {
    let text = read("Dockerfile");
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage: {stages:?}");
    assert!(stages[0].contains(" AS build"), "{}", stages[0]);
    assert!(stages[1].contains("distroless/cc-debian12:nonroot"), "{}", stages[1]);
    let runtime = &text[text.find(stages[1]).unwrap()..];
    assert!(
        runtime.contains("\nUSER nonroot:nonroot\n"),
        "the runtime stage runs as nonroot"
    );
    for copied in ["connectors/catalog", "connectors/unified"] {
        assert!(runtime.contains(&format!("COPY {copied} ")), "copies {copied}");
        assert!(repo().join(copied).is_dir(), "{copied} exists");
    }
    let cmd = runtime.lines().find(|l| l.starts_with("CMD ")).expect("a CMD");
    assert!(cmd.contains("/usr/local/bin/switchyard-ingress"), "{cmd}");

    // `-p <package>` of the cargo build, and `target/release/<bin>` of the copy.
    let words: Vec<&str> = text.split_whitespace().collect();
    let packages: BTreeSet<&str> = words
        .windows(2)
        .filter(|w| w[0] == "-p" && w[1].starts_with("switchyard"))
        .map(|w| w[1])
        .collect();
    let copied: BTreeSet<&str> = words.iter().filter_map(|w| w.strip_prefix("target/release/")).collect();
    for package in &packages {
        let manifest = read(&format!("{}/Cargo.toml", package.trim_start_matches("switchyard-")));
        assert!(
            manifest.contains(&format!("name = \"{package}\"")),
            "{package} is a workspace package"
        );
    }
    let expected: BTreeSet<&str> = [
        "switchyard-ingress",
        "switchyard-normalizer",
        "switchyard-dispatcher",
        "switchyard",
    ]
    .into();
    assert_eq!(copied, expected, "every binary is copied out of the build stage");
    assert_eq!(packages.len(), 4, "{packages:?}");

    let exe = std::env::current_exe().unwrap();
    let ldd = match Command::new("ldd").arg(&exe).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => {
            eprintln!("ldd not installed: the shared libraries were not checked");
            return;
        }
    };
    let provided = ["linux-vdso", "libc.so", "libm.so", "libgcc_s.so", "ld-linux"];
    for line in ldd.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            provided
                .iter()
                .any(|p| line.starts_with(p) || line.starts_with(&format!("/lib64/{p}"))),
            "needs a library distroless/cc does not have: {line}"
        );
    }
}

/// Every key of the defaults is read by the code that it configures, so a key that is
/// parsed and never used (as `ingress.public_url` once was) fails here: its field is
/// accessed as `.<key>` in some crate's sources other than the configuration's own
/// definitions.
#[test]
fn every_default_key_is_read_by_code() {
    let mut sources = String::new();
    for dir in [
        "core/src",
        "claimcheck/src",
        "registry/src",
        "connectors/src",
        "ingress/src",
        "normalizer/src",
        "dispatcher/src",
        "cli/src",
    ] {
        let mut stack = vec![repo().join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("core/src/config.rs") {
                    sources.push_str(&std::fs::read_to_string(&path).unwrap());
                    sources.push('\n');
                }
            }
        }
    }
    // Read where they are validated or resolved, in config.rs itself.
    let config_rs = read("core/src/config.rs");
    let impls = &config_rs[config_rs.find("impl Config").expect("impl Config")..];
    let read_as_field = |text: &str, key: &str| {
        text.match_indices(&format!(".{key}")).any(|(i, m)| {
            let next = text[i + m.len()..].chars().next();
            !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let unread: Vec<String> = keys(switchyard_core::config::DEFAULTS, false)
        .into_iter()
        .filter(|(_, k)| !read_as_field(&sources, k) && !read_as_field(impls, k))
        .map(|(s, k)| if s.is_empty() { k } else { format!("{s}.{k}") })
        .collect();
    assert!(
        unread.is_empty(),
        "these keys of core/config.default.toml are parsed but read nowhere: {unread:?}"
    );
}
