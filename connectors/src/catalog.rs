//! Loading and validating the connector catalog: a folder of `*.toml` connector files.
//!
//! The catalog is checked whole. Every problem in every file is collected and reported
//! at once, one line each (`file:line: field: what is wrong`), and a catalog with any
//! problem is refused entirely: a binary never runs on half a catalog.
//!
//! Mappings are checked against the unified models ([`crate::unified`]), read from the
//! folder `unified/` beside the catalog folder (`connectors/catalog` → `connectors/unified`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::compile::CompiledMapping;
use crate::model::{ConnectorFile, SignatureHeader, SignatureSpec, TimestampSource, UnmappedPolicy, X509Message};
use crate::problems::{err, line_of, nth_line_containing};
pub use crate::problems::{CatalogError, CatalogErrors};
use crate::unified::UnifiedModels;

/// One loaded, validated connector.
#[derive(Debug)]
pub struct Connector {
    pub name: String,
    pub title: String,
    /// Where the provider documents its webhooks.
    pub docs: String,
    pub path: PathBuf,
    pub max_body_bytes: Option<usize>,
    pub content_types: Vec<String>,
    /// Methods events are delivered with (upper case); `POST` unless the file says.
    pub methods: Vec<String>,
    pub signature: SignatureSpec,
    pub signature_fallbacks: Vec<SignatureSpec>,
    pub handshakes: Vec<crate::model::Handshake>,
    pub event: crate::model::EventSpec,
    pub keep_headers: Vec<String>,
    pub unmapped: UnmappedPolicy,
    /// The provider's own success answer, if it expects one.
    pub accepted: Option<Arc<crate::model::AcceptedReply>>,
    /// Provider event type → its mappings, tried in order (see [`crate::apply`]).
    pub mappings: BTreeMap<String, Vec<CompiledMapping>>,
    /// What the provider documents ([`crate::coverage`]).
    pub coverage: Option<crate::coverage::CoverageSpec>,
}

impl Connector {
    /// How many of the provider's documented event types this connector maps.
    pub fn coverage_report(&self) -> crate::coverage::Report {
        crate::coverage::report(&self.name, self.coverage.as_ref(), &self.mappings)
    }
}

/// The loaded catalog.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    connectors: BTreeMap<String, Arc<Connector>>,
    models: UnifiedModels,
}

impl Catalog {
    /// The unified models folder of the catalog folder `dir`: `unified/` beside it.
    pub fn models_dir(dir: &Path) -> PathBuf {
        sibling(dir, "unified")
    }

    /// Load every `*.toml` file in `dir`, checking mappings against the unified models
    /// beside it ([`Self::models_dir`]). Without that folder no unified type is defined,
    /// so only a catalog whose mappings name their own connector's types loads.
    pub fn load_dir(dir: &Path) -> Result<Self, CatalogErrors> {
        let models_dir = Self::models_dir(dir);
        let models = if !models_dir.is_dir() {
            Ok(UnifiedModels::default())
        } else {
            UnifiedModels::load_dir(&models_dir)
        };
        let models = models.map_err(|errors| {
            CatalogErrors(
                errors
                    .into_iter()
                    .map(|e| err(&e.file, None, "", format!("unified model: {}", e.message)))
                    .collect(),
            )
        })?;
        let entries = std::fs::read_dir(dir).map_err(|e| {
            CatalogErrors(vec![CatalogError {
                file: dir.to_path_buf(),
                line: None,
                field: String::new(),
                message: format!("cannot read the catalog folder: {e}"),
            }])
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut sources = Vec::with_capacity(files.len());
        let mut errors = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => sources.push((f, text)),
                Err(e) => errors.push(CatalogError {
                    file: f,
                    line: None,
                    field: String::new(),
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        match Self::from_sources_with_models(sources, models) {
            Ok(c) if errors.is_empty() => Ok(c),
            Ok(_) => Err(CatalogErrors(errors)),
            Err(CatalogErrors(more)) => {
                errors.extend(more);
                Err(CatalogErrors(errors))
            }
        }
    }

    /// Build from `(path, text)` pairs, without unified models: mappings may then only
    /// name their own connector's `<connector>.…` types.
    pub fn from_sources(sources: Vec<(PathBuf, String)>) -> Result<Self, CatalogErrors> {
        Self::from_sources_with_models(sources, UnifiedModels::default())
    }

    /// Build from `(path, text)` pairs, checking mappings against `models`.
    pub fn from_sources_with_models(
        sources: Vec<(PathBuf, String)>,
        models: UnifiedModels,
    ) -> Result<Self, CatalogErrors> {
        let mut errors = Vec::new();
        let mut connectors = BTreeMap::new();
        for (path, text) in sources {
            if let Some(c) = load_one(&path, &text, &models, &mut errors) {
                if connectors.contains_key(&c.name) {
                    errors.push(err(
                        &path,
                        None,
                        "name",
                        format!("connector {:?} is defined twice", c.name),
                    ));
                } else {
                    connectors.insert(c.name.clone(), Arc::new(c));
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { connectors, models })
        } else {
            Err(CatalogErrors(errors))
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Connector>> {
        self.connectors.get(name)
    }

    /// The unified models the mappings were checked against.
    pub fn models(&self) -> &UnifiedModels {
        &self.models
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.connectors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.connectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }
}

/// The folder `name` beside the folder `dir` (`connectors/catalog` → `connectors/<name>`).
pub(crate) fn sibling(dir: &Path, name: &str) -> PathBuf {
    match (dir.parent(), dir.components().next_back()) {
        (Some(parent), Some(std::path::Component::Normal(_))) => parent.join(name),
        _ => dir.join("..").join(name),
    }
}

/// What a TOML error says. The parser leaves its message empty for some characters
/// (a control character in a comment, say): the column is named instead.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    match (e.message().trim(), e.span()) {
        ("", Some(s)) => {
            let before = text.get(..s.start).unwrap_or_default();
            let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
            format!("not valid TOML at column {column} (a character not allowed there)")
        }
        ("", None) => "not valid TOML".to_string(),
        (m, _) => m.to_string(),
    }
}

fn line_containing(text: &str, needle: &str) -> Option<usize> {
    nth_line_containing(text, needle, 0)
}

fn load_one(path: &Path, text: &str, models: &UnifiedModels, errors: &mut Vec<CatalogError>) -> Option<Connector> {
    let file: ConnectorFile = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            errors.push(err(path, line, "", syntax_message(text, &e)));
            return None;
        }
    };
    let before = errors.len();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if !valid_name(&file.name) {
        errors.push(err(
            path,
            line_containing(text, "name"),
            "name",
            format!(
                "{:?} is not a valid connector name: use lowercase letters, digits and '_'",
                file.name
            ),
        ));
    } else if stem != file.name {
        errors.push(err(
            path,
            line_containing(text, "name"),
            "name",
            format!("{:?} does not match the file name {stem:?}", file.name),
        ));
    }
    check_signature(path, text, &file.signature, errors);
    check_handshakes(path, text, &file.handshake, &file.signature, errors);
    for fallback in &file.signature_fallbacks {
        check_signature(path, text, fallback, errors);
        if fallback.uses_public_keys() != file.signature.uses_public_keys() {
            errors.push(err(
                path,
                line_containing(text, "[[signature_fallbacks]]"),
                "signature_fallbacks",
                "a fallback must use the same kind of key as the primary scheme (secrets or public keys)",
            ));
        }
    }
    let mappings = crate::compile::compile(path, text, &file.name, &file.mappings, models, errors);
    if let Some(spec) = &file.coverage {
        crate::coverage::check(path, text, spec, &file.mappings, errors);
    }
    if errors.len() > before {
        return None;
    }
    // What extraction reads is kept with the claim-check whatever the file says, so a
    // replay from S3 (`switchyard replay raw`) reads the same ids and types.
    let mut keep_headers: Vec<String> = file
        .keep_headers
        .iter()
        .map(String::as_str)
        .chain(file.event.headers_read())
        .map(str::to_ascii_lowercase)
        .collect();
    keep_headers.sort();
    keep_headers.dedup();
    Some(Connector {
        name: file.name,
        title: file.title,
        path: path.to_path_buf(),
        max_body_bytes: file.max_body_bytes,
        docs: file.docs,
        content_types: file.content_types,
        methods: file.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
        signature: file.signature,
        signature_fallbacks: file.signature_fallbacks,
        handshakes: file.handshake,
        event: file.event,
        keep_headers,
        unmapped: file.unmapped,
        accepted: file.accepted.map(Arc::new),
        mappings,
        coverage: file.coverage,
    })
}

/// A `test_key` handshake verifies with the signature scheme, so it needs one keyed by
/// secrets.
fn check_handshakes(
    path: &Path,
    text: &str,
    handshakes: &[crate::model::Handshake],
    spec: &SignatureSpec,
    errors: &mut Vec<CatalogError>,
) {
    for h in handshakes {
        if let crate::model::Handshake::TestKey { key } = h {
            let line = line_containing(text, "test_key");
            if spec.fetches_keys() || spec.uses_public_keys() {
                errors.push(err(
                    path,
                    line,
                    "handshake",
                    "test_key verifies with a published shared key: the [signature] must be keyed by secrets (hmac, token)",
                ));
            }
            if key.is_empty() {
                errors.push(err(
                    path,
                    line,
                    "handshake.key",
                    "give the provider's published test key",
                ));
            }
        }
    }
}

fn check_signature(path: &Path, text: &str, spec: &SignatureSpec, errors: &mut Vec<CatalogError>) {
    let line = line_containing(text, "[signature]");
    match spec {
        SignatureSpec::Hmac(h) => {
            if h.message.uses_timestamp() && h.timestamp.is_none() {
                errors.push(err(
                    path,
                    line,
                    "signature.timestamp",
                    "the message template uses {timestamp}, so a timestamp (source, unit, tolerance_secs) is required",
                ));
            }
            if let Some(ts) = &h.timestamp {
                let has_key = matches!(
                    &h.header,
                    Some(SignatureHeader::KeyValue {
                        timestamp_key: Some(_),
                        ..
                    }) | Some(SignatureHeader::List {
                        timestamp_first: true,
                        ..
                    })
                );
                if ts.source == TimestampSource::SignatureHeader && !has_key {
                    errors.push(err(
                        path,
                        line,
                        "signature.timestamp.source",
                        "\"signature_header\" needs a key_value signature header with a timestamp_key, or a list one with timestamp_first",
                    ));
                }
                if ts.tolerance_secs == 0 {
                    errors.push(err(path, line, "signature.timestamp.tolerance_secs", "must be above 0"));
                }
            }
            if h.items.is_some() {
                if h.body_field.is_none() {
                    errors.push(err(
                        path,
                        line,
                        "signature.items",
                        "each item's signature is read at `body_field`, so give it",
                    ));
                }
                if h.timestamp.is_some() || h.message.uses_form() {
                    errors.push(err(
                        path,
                        line,
                        "signature.items",
                        "a signature per item signs the item's fields: no timestamp or {form_sorted}",
                    ));
                }
            }
            match (&h.header, &h.body_field) {
                (Some(hd), None) if hd.name().is_empty() => {
                    errors.push(err(path, line, "signature.header.name", "names no header"))
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => errors.push(err(
                    path,
                    line,
                    "signature",
                    "give exactly one of `header` or `body_field`",
                )),
            }
        }
        SignatureSpec::Token(t) if t.header.is_empty() => {
            errors.push(err(path, line, "signature.header", "names no header"))
        }
        SignatureSpec::Token(_) | SignatureSpec::Basic(_) | SignatureSpec::BodyField(_) => {}
        SignatureSpec::Jwt(_) | SignatureSpec::X509(_) => check_fetched(path, line, spec, errors),
        SignatureSpec::Ed25519(a) | SignatureSpec::EcdsaP256(a) => {
            if a.message.uses_timestamp() && a.timestamp.is_none() {
                errors.push(err(
                    path,
                    line,
                    "signature.timestamp",
                    "the message template uses {timestamp}, so a timestamp is required",
                ));
            }
            if matches!(
                a.timestamp.as_ref().map(|t| &t.source),
                Some(TimestampSource::SignatureHeader)
            ) {
                errors.push(err(
                    path,
                    line,
                    "signature.timestamp.source",
                    "asymmetric schemes read the timestamp from a header",
                ));
            }
        }
    }
}

fn check_fetched(path: &Path, line: Option<usize>, spec: &SignatureSpec, errors: &mut Vec<CatalogError>) {
    match spec {
        SignatureSpec::Jwt(j) => {
            if j.header.is_empty() {
                errors.push(err(path, line, "signature.header", "names no header"));
            }
            let keyed_by_secret = !j.publishes_keys();
            let https = |u: &str| u.starts_with("https://") && url::Url::parse(u).is_ok();
            if !j.jwks_url.is_empty() && !https(&j.jwks_url) {
                errors.push(err(path, line, "signature.jwks_url", "must be an https:// URL"));
            }
            if let Some(k) = &j.key_request {
                if !j.jwks_url.is_empty() {
                    errors.push(err(
                        path,
                        line,
                        "signature.key_request",
                        "keys come from jwks_url or from key_request, not both: remove one",
                    ));
                }
                if !https(&k.url) {
                    errors.push(err(path, line, "signature.key_request.url", "must be an https:// URL"));
                }
                if k.kid_field.is_empty() {
                    errors.push(err(
                        path,
                        line,
                        "signature.key_request.kid_field",
                        "name the request's field for the key id (e.g. \"key_id\")",
                    ));
                }
                let names = &k.credential_headers;
                if names.is_empty()
                    || names.len() > 2
                    || names
                        .iter()
                        .any(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err())
                {
                    errors.push(err(
                        path,
                        line,
                        "signature.key_request.credential_headers",
                        "one or two header names (two: the account's secret is written <first>:<second>)",
                    ));
                }
            }
            if j.audience == crate::model::JwtAudience::None && j.body_sha256_claim.is_none() {
                errors.push(err(
                    path,
                    line,
                    "signature.audience",
                    "a token with no audience must bind the body: set body_sha256_claim",
                ));
            }
            if j.algorithms.is_empty() {
                errors.push(err(
                    path,
                    line,
                    "signature.algorithms",
                    "list at least one (e.g. [\"RS256\"])",
                ));
            }
            // Never both kinds: a public key used as an HMAC secret forges any token.
            if j.algorithms.iter().any(|a| a.is_hmac() != keyed_by_secret) {
                errors.push(err(
                    path,
                    line,
                    "signature.algorithms",
                    "with jwks_url only RS*/ES* algorithms; without it (keyed by the account's secrets) only HS*",
                ));
            }
            if keyed_by_secret && j.audience == crate::model::JwtAudience::Account {
                errors.push(err(
                    path,
                    line,
                    "signature.audience",
                    "an HMAC token is keyed by the account's secrets, so they cannot also be its audiences: use \"called_url\"",
                ));
            }
        }
        SignatureSpec::X509(x) => {
            if x.cert_hosts.is_empty() {
                errors.push(err(
                    path,
                    line,
                    "signature.cert_hosts",
                    "list the hosts certificates may be fetched from",
                ));
            }
            for host in &x.cert_hosts {
                // A wildcard needs two fixed labels after it: never `*` or `*.com`.
                let labels: Vec<&str> = host.split('.').collect();
                let fixed_after = labels.iter().rev().take_while(|l| **l != "*").count();
                let bad = labels.iter().any(|l| l.is_empty())
                    || labels.iter().filter(|l| **l == "*").count() > 1
                    || (labels.contains(&"*") && fixed_after < 2);
                if bad {
                    errors.push(err(
                        path,
                        line,
                        "signature.cert_hosts",
                        "each is a host name, or one `*` label followed by at least two fixed ones",
                    ));
                }
            }
            if x.cert_path
                .as_deref()
                .is_some_and(|p| !p.starts_with('/') || p.contains("**"))
            {
                errors.push(err(
                    path,
                    line,
                    "signature.cert_path",
                    "a path starting with `/`, each `*` standing for letters or digits (`/SimpleNotificationService-*.pem`)",
                ));
            }
            if let X509Message::JsonLines { json_lines } = &x.message {
                if json_lines.is_empty() {
                    errors.push(err(
                        path,
                        line,
                        "signature.message.json_lines",
                        "list the signed fields",
                    ));
                }
            }
        }
        _ => {}
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod prop_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")
    }

    fn models() -> UnifiedModels {
        UnifiedModels::load_dir(&Catalog::models_dir(&shipped())).unwrap()
    }

    #[test]
    fn the_shipped_catalog_loads() {
        let c = Catalog::load_dir(&shipped()).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.get("stripe").is_some());
    }

    #[test]
    fn every_problem_is_reported_with_file_line_and_field() {
        let stripe = std::fs::read_to_string(shipped().join("stripe.toml")).unwrap();
        let broken = stripe
            .replace("type = \"payments.charge.refunded\"", "type = \"Payments\"")
            .replacen("\"number\": $i.number,", "\"number\": $i.number,,", 1);
        let typo = stripe.replace("title = \"Stripe\"", "titel = \"Stripe\"");
        let e = Catalog::from_sources_with_models(
            vec![
                (PathBuf::from("stripe.toml"), broken),
                (PathBuf::from("other.toml"), typo),
            ],
            models(),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("mappings.\"charge.refunded\".type"), "{text}");
        assert!(text.contains("mappings.\"invoice.paid\".data"), "{text}");
        assert!(text.contains("other.toml:"), "{text}");
        assert!(text.contains("titel"), "{text}");
        assert_eq!(e.0.len(), 3, "{text}");
    }

    /// Found by `prop_tests`: a NUL (or other control character) in a comment gave
    /// `asana.toml:1: ` and nothing more, the TOML parser's message being empty.
    #[test]
    fn a_syntax_error_without_a_message_names_its_column() {
        let e = Catalog::from_sources(vec![(PathBuf::from("x.toml"), "# A\0b\nname = \"x\"\n".into())]).unwrap_err();
        assert_eq!(
            e.0[0].to_string(),
            "x.toml:1: not valid TOML at column 4 (a character not allowed there)"
        );
    }
}
