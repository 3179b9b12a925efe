//! The connector file format, as serde types. Every struct rejects unknown fields, so a
//! typo is an error at load time, never a silently ignored setting. The reference for
//! authors is `connectors/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::jsonpath::JsonPath;
use crate::template::Template;

/// One connector file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFile {
    /// The connector's name; also its URL segment and the file's stem.
    pub name: String,
    /// Human-readable provider name.
    pub title: String,
    /// Where the provider documents its webhooks.
    #[serde(default)]
    pub docs: String,
    /// Content types the provider sends (`application/json`); others are refused with
    /// 415. Empty: any.
    #[serde(default)]
    pub content_types: Vec<String>,
    /// Largest body accepted, overriding `ingress.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// HTTP methods the provider delivers events with (`["POST", "GET"]` for Twilio,
    /// whose callbacks can be set to GET); others get 405. A GET's query string is its
    /// body, read as a form.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    pub signature: SignatureSpec,
    /// Older schemes the provider may still send (HubSpot v2 and v1 behind v3), tried in
    /// order only when the primary scheme's signature header is absent. Each is checked
    /// as strictly as the primary; an older scheme may be weaker (no timestamp).
    #[serde(default)]
    pub signature_fallbacks: Vec<SignatureSpec>,
    /// Handshakes the provider sends before events.
    #[serde(default)]
    pub handshake: Vec<Handshake>,
    pub event: EventSpec,
    /// Request headers kept with the claim-check for later stages.
    #[serde(default)]
    pub keep_headers: Vec<String>,
    /// What to do with a provider event type that has no mapping.
    #[serde(default)]
    pub unmapped: UnmappedPolicy,
    /// The answer once the events are durable, where the provider expects its own
    /// (Salesforce's SOAP `Ack`, without which it retries for 24 hours); absent: the
    /// ingress's JSON.
    #[serde(default)]
    pub accepted: Option<AcceptedReply>,
    /// Provider event type → its mapping, or several tried in order (`[[mappings."t"]]`).
    #[serde(default)]
    pub mappings: BTreeMap<String, MappingCases>,
    /// The provider's documented event types, and which pass through on purpose.
    #[serde(default)]
    pub coverage: Option<crate::coverage::CoverageSpec>,
}

/// `accepted = { content_type = "text/xml", body = "…" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedReply {
    pub content_type: String,
    pub body: String,
}

fn default_methods() -> Vec<String> {
    vec!["POST".into()]
}

/// How the provider proves a webhook is its own. A closed set of schemes, each with its
/// own typed fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case")]
pub enum SignatureSpec {
    /// An HMAC over bytes built from a template.
    Hmac(HmacSpec),
    /// A static token in a header, compared with the account's secrets. Weaker: the
    /// token is replayable and does not bind the body.
    Token(TokenSpec),
    /// HTTP Basic credentials (`user:password`), compared with the account's secrets.
    /// Weaker, as `token`.
    Basic(BasicSpec),
    /// A shared secret echoed in a body field (Microsoft Graph `clientState`), compared
    /// with the account's secrets. Weaker, as `token`.
    BodyField(BodyFieldSpec),
    /// An Ed25519 signature (Discord) checked with the account's public key(s), hex.
    Ed25519(AsymmetricSpec),
    /// An ECDSA P-256 / SHA-256 signature, DER in base64 (SendGrid), checked with the
    /// account's public key(s): base64 DER (SubjectPublicKeyInfo) or PEM.
    EcdsaP256(AsymmetricSpec),
    /// A JSON Web Token in a header, signed with a key the provider publishes as a JWKS
    /// (Google Cloud Pub/Sub push's OIDC token). The keys are fetched by the ingress.
    Jwt(JwtSpec),
    /// A signature made with the private key of an X.509 certificate whose URL the
    /// request names (AWS SNS `SigningCertURL`), fetched only from allow-listed hosts.
    X509(X509Spec),
}

impl SignatureSpec {
    /// Whether a captured request is refused once its window passes: the scheme signs a
    /// timestamp it checks. A fallback that is not is tried only where the operator opts
    /// in (`[connectors.<name>] legacy_signatures`).
    pub fn is_replay_safe(&self) -> bool {
        match self {
            Self::Hmac(h) => h.timestamp.is_some() && h.message.uses_timestamp(),
            Self::Ed25519(a) | Self::EcdsaP256(a) => a.timestamp.is_some(),
            // A token expires (`exp`) and its age is bounded (`max_age_secs`).
            Self::Jwt(_) => true,
            Self::X509(x) => x.timestamp.is_some(),
            Self::Token(_) | Self::Basic(_) | Self::BodyField(_) => false,
        }
    }

    /// Asymmetric schemes verify with the account's public keys, not its secrets.
    pub fn uses_public_keys(&self) -> bool {
        matches!(self, Self::Ed25519(_) | Self::EcdsaP256(_))
    }

    /// Schemes whose keys the ingress fetches from the provider (JWKS, certificates).
    pub fn fetches_keys(&self) -> bool {
        match self {
            Self::Jwt(j) => j.publishes_keys(),
            Self::X509(_) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsymmetricSpec {
    /// The header carrying the signature.
    pub header: String,
    pub encoding: Encoding,
    /// The signed bytes, e.g. `"{timestamp}{body}"`.
    pub message: Template,
    #[serde(default)]
    pub timestamp: Option<TimestampSpec>,
}

/// `scheme = "jwt"`: see `connectors/README.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    /// The header carrying the token (`Authorization`).
    pub header: String,
    /// Stripped before decoding, e.g. `Bearer `.
    #[serde(default)]
    pub prefix: String,
    /// Where the provider publishes its keys (HTTPS), as a JSON Web Key Set. Empty: the
    /// token is an HMAC one (`HS256`…) keyed with the account's signing secrets
    /// (monday.com's apps).
    #[serde(default)]
    pub jwks_url: String,
    /// The algorithms accepted (`RS256`, `ES256` with a JWKS; `HS256` without); a token
    /// naming another is refused.
    pub algorithms: Vec<JwtAlgorithm>,
    /// Accepted `iss` values; empty: any.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Which `aud` is ours: `called_url` (the URL the provider called, as Pub/Sub's
    /// default audience is the push endpoint) or `account` (the account's
    /// `signing_secrets` hold the accepted audiences).
    #[serde(default)]
    pub audience: JwtAudience,
    /// A claim holding the body's SHA-256 in hex (Plaid's `request_body_sha256`).
    #[serde(default)]
    pub body_sha256_claim: Option<String>,
    /// The token's `iat` may be at most this old (Plaid: 5 minutes).
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// Instead of a JWKS: each key asked for by its `kid`, with the account's API
    /// credentials (Plaid's `/webhook_verification_key/get`).
    #[serde(default)]
    pub key_request: Option<KeyRequestSpec>,
}

impl JwtSpec {
    /// Whether the keys are the provider's, fetched (a JWKS or a key request), rather
    /// than the account's HMAC secrets.
    pub fn publishes_keys(&self) -> bool {
        !self.jwks_url.is_empty() || self.key_request.is_some()
    }
}

/// `[signature.key_request]`: one key fetched per key id by a `POST` of
/// `{"<kid_field>": "<kid>"}` to `url`, authenticated with the account's credentials in
/// `credential_headers`; the answer holds the key (a JWK) at `key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequestSpec {
    /// HTTPS; the only host asked.
    pub url: String,
    /// The request body's field naming the key (`key_id`).
    pub kid_field: String,
    /// One header (the whole secret) or two (the secret written `<first>:<second>`,
    /// split at its first `:`, as Plaid's `client_id:secret`).
    pub credential_headers: Vec<String>,
    /// Where in the answer the JWK is (`key`).
    pub key: JsonPath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    HS256,
    HS384,
    HS512,
}

impl JwtAlgorithm {
    /// Keyed with a shared secret, not a published public key.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum JwtAudience {
    #[default]
    CalledUrl,
    Account,
    /// The token names no audience (Plaid's); it must bind the body instead
    /// (`body_sha256_claim`).
    None,
}

/// `scheme = "x509"`: see `connectors/README.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct X509Spec {
    /// Where the request names its certificate's URL.
    pub cert_url: FieldRef,
    /// Hosts a certificate may be fetched from (HTTPS only): exact names, or one
    /// leading `*` label matching one label (`sns.*.amazonaws.com`). Any other URL is
    /// refused before anything is fetched.
    pub cert_hosts: Vec<String>,
    /// The path a certificate URL must have, beside its host: literal text, each `*`
    /// one or more ASCII letters or digits (`/SimpleNotificationService-*.pem`, as AWS's
    /// own SDK validators require); no query. Absent: any path.
    #[serde(default)]
    pub cert_path: Option<String>,
    /// Where the signature is.
    pub signature: FieldRef,
    #[serde(default = "default_base64")]
    pub encoding: Encoding,
    /// The algorithm: fixed, or chosen by a field of the request.
    pub algorithm: X509AlgorithmSpec,
    /// The signed bytes.
    pub message: X509Message,
    #[serde(default)]
    pub timestamp: Option<TimestampSpec>,
}

fn default_base64() -> Encoding {
    Encoding::Base64
}

/// A value of the request: a header, or a JSON path into the body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldRef {
    Header(String),
    Json(JsonPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum X509Algorithm {
    /// RSA PKCS#1 v1.5 with SHA-1: only where the provider still signs so (SNS
    /// `SignatureVersion` 1, its default).
    RsaSha1,
    RsaSha256,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum X509AlgorithmSpec {
    Fixed(X509Algorithm),
    /// `{ field = { json = "SignatureVersion" }, values = { "1" = "rsa-sha1", … } }`; a
    /// value not listed is refused.
    ByField {
        field: FieldRef,
        values: BTreeMap<String, X509Algorithm>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum X509Message {
    /// A template, as for `hmac`.
    Template(Template),
    /// `{ json_lines = ["Message", "MessageId", …] }`: for each listed top-level field
    /// the body has, its name, a newline, its value, a newline (AWS SNS).
    JsonLines { json_lines: Vec<String> },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub header: String,
    /// Stripped before comparing, e.g. `Bearer `.
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BasicSpec {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyFieldSpec {
    /// An array of items each carrying the field (Graph's `value`); absent: the body.
    #[serde(default)]
    pub items: Option<JsonPath>,
    /// The field holding the secret, within each item.
    pub field: JsonPath,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSpec {
    pub algorithm: HmacAlgorithm,
    /// `hmac` (default), or `secret_prefix`: a plain hash of the secret followed by the
    /// message (HubSpot v1/v2). Weaker than an HMAC; only for providers that use it.
    #[serde(default)]
    pub construction: HmacConstruction,
    /// How stored secrets turn into key bytes.
    #[serde(default)]
    pub secret_format: SecretFormat,
    /// The signed bytes, e.g. `"{timestamp}.{body}"`.
    pub message: Template,
    /// Where the signature is and how it is written: a header ...
    #[serde(default)]
    pub header: Option<SignatureHeader>,
    /// ... or a field of the JSON body (Mailgun's `signature.signature`).
    #[serde(default)]
    pub body_field: Option<JsonPath>,
    /// A batch whose items each carry their own signature over their own fields
    /// (Adyen's `notificationItems`): the array at this path. `body_field` and the
    /// template's `{json:…}` paths are then read within each item, and every item must
    /// verify (one forged item refuses the request).
    #[serde(default)]
    pub items: Option<JsonPath>,
    /// `hex` or `base64`.
    pub encoding: Encoding,
    /// Required when the template uses `{timestamp}`; enforces a replay window.
    #[serde(default)]
    pub timestamp: Option<TimestampSpec>,
    /// Other forms of `{url}` the provider's own validators accept, tried after the URL
    /// as called; any one matching passes. Each is derived from the URL the provider
    /// called (see the ingress's `called_url`), never from anything else in the request.
    #[serde(default)]
    pub url_variants: Vec<UrlVariant>,
    /// A query parameter of the called URL that carries the hex SHA-256 of the body
    /// (Twilio signs JSON callbacks' URL only, with `bodySHA256=`): when present, the
    /// body must hash to it, and `{form_sorted}` is empty.
    #[serde(default)]
    pub body_hash_param: Option<String>,
    /// The signature value is pairs of `<key id><key_separator><signature>` joined by
    /// `pair_separator` (Braintree's `public_key|sig&…`): each account secret is written
    /// `<key id><key_separator><secret>`, and only the pairs of its key id are checked.
    #[serde(default)]
    pub signature_pairs: Option<SignaturePairs>,
}

/// `signature_pairs = { pair_separator = "&", key_separator = "|" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignaturePairs {
    #[serde(default = "default_pairs_separator")]
    pub pair_separator: String,
    #[serde(default = "default_key_separator")]
    pub key_separator: String,
}

fn default_pairs_separator() -> String {
    "&".into()
}
fn default_key_separator() -> String {
    "|".into()
}

/// A form of the called URL; see [`HmacSpec::url_variants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlVariant {
    /// Any `:port` removed (Twilio's validators).
    WithoutPort,
    /// `:443` for https, `:80` for http added where no port is given (Twilio).
    WithDefaultPort,
    /// `%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B` decoded (HubSpot v3's table).
    DecodeReserved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HmacConstruction {
    #[default]
    Hmac,
    /// `digest(secret ‖ message)`.
    SecretPrefix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecretFormat {
    /// The secret's bytes as stored (Stripe's `whsec_…` is used this way).
    #[default]
    Raw,
    /// `whsec_` followed by base64, decoded (the Standard Webhooks definition).
    WhsecBase64,
    /// Hex, decoded (Close's signature keys).
    Hex,
    /// The SHA-1 digest of the secret's bytes (Braintree keys its HMAC with SHA-1 of the
    /// private key).
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// The header carrying the signature, and its layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignatureHeader {
    /// The whole value is one signature, after an optional prefix (`sha256=`).
    Plain {
        name: String,
        #[serde(default)]
        prefix: String,
    },
    /// `key=value` pairs (Stripe `t=…,v1=…,v1=…`); every value under `signature_key` is
    /// a candidate, `timestamp_key` names the signed timestamp.
    KeyValue {
        name: String,
        #[serde(default = "default_pair_separator")]
        pair_separator: String,
        #[serde(default = "default_kv_separator")]
        kv_separator: String,
        signature_key: String,
        #[serde(default)]
        timestamp_key: Option<String>,
    },
    /// A list of signatures (Standard Webhooks `v1,… v1,…`), each after a prefix.
    List {
        name: String,
        #[serde(default = "default_list_separator")]
        separator: String,
        #[serde(default)]
        prefix: String,
        /// The first item is the signed timestamp, the rest are signatures (Recurly's
        /// `<unix ms>,<hex>,<hex>`); `timestamp.source = "signature_header"` reads it.
        #[serde(default)]
        timestamp_first: bool,
    },
}

impl SignatureHeader {
    pub fn name(&self) -> &str {
        match self {
            Self::Plain { name, .. } | Self::KeyValue { name, .. } | Self::List { name, .. } => name,
        }
    }
}

fn default_pair_separator() -> String {
    ",".into()
}
fn default_kv_separator() -> String {
    "=".into()
}
fn default_list_separator() -> String {
    " ".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampSpec {
    /// Where the timestamp is: `signature_header` (the `timestamp_key` part, or the first
    /// item of a `list` header with `timestamp_first`) or a header.
    pub source: TimestampSource,
    #[serde(default)]
    pub unit: TimeUnit,
    /// Requests whose timestamp is further than this from now are refused (401).
    pub tolerance_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampSource {
    SignatureHeader,
    Header(String),
    Json(JsonPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    #[default]
    Seconds,
    Milliseconds,
    /// An RFC 3339 date-time (Zendesk), used as sent in the signed bytes.
    Rfc3339,
}

/// Where the event id, type and time are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// For a body carrying several events (HubSpot's array, Graph's `value`): where the
    /// array is (`"$"` for a top-level array). `id`, `type` and `occurred_at` JSON paths
    /// are then read within each item, and each item becomes its own event.
    #[serde(default)]
    pub items: Option<JsonPath>,
    pub id: ValueSource,
    #[serde(rename = "type")]
    pub event_type: ValueSource,
    #[serde(default)]
    pub occurred_at: Option<TimeSource>,
    /// The provider's id of the account an event belongs to (HubSpot `portalId`, Slack
    /// `team_id`, GitHub `installation.id`): the routing key of the connector-level
    /// endpoint `POST /v1/webhooks/<connector>`, matched against the `external_id` of
    /// registered accounts. Read within each item, like `id`. Absent: that endpoint is
    /// off for this connector.
    #[serde(default)]
    pub account: Option<ValueSource>,
    /// Other shapes of body the provider sends to the same URL (Slack's slash commands
    /// and interactivity beside its Events API; Discord's webhook events beside its
    /// interactions), each with its own paths; the first whose `when` holds applies, else
    /// the paths above. A part a shape leaves out is the one above.
    #[serde(default)]
    pub shapes: Vec<BodyShape>,
    /// A document inside one form parameter that holds the events (Mandrill's
    /// `mandrill_events`, JSON; Braintree's `bt_payload`, base64 of XML): paths, shapes
    /// and mappings read it instead of the form. The signature is still over the body.
    #[serde(default)]
    pub document: Option<EmbeddedDocument>,
}

/// `document = { form_field = "mandrill_events", decode = "json" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedDocument {
    /// The form parameter holding the document.
    pub form_field: String,
    pub decode: DocumentEncoding,
}

/// How a form parameter's document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentEncoding {
    /// JSON text (Mandrill).
    Json,
    /// Base64 (line breaks allowed) of an XML document, read by the XML rule (Braintree).
    Base64Xml,
}

impl EventSpec {
    /// Every request header the event's id, type, account or a shape's condition reads.
    pub fn headers_read(&self) -> impl Iterator<Item = &str> {
        fn header(s: Option<&ValueSource>) -> Option<&str> {
            match s {
                Some(ValueSource::Header(h)) => Some(h.as_str()),
                _ => None,
            }
        }
        let top = [
            header(Some(&self.id)),
            header(Some(&self.event_type)),
            header(self.account.as_ref()),
        ];
        let shapes = self.shapes.iter().flat_map(move |s| {
            [
                header(s.id.as_ref()),
                header(s.event_type.as_ref()),
                header(s.account.as_ref()),
                s.when.header.as_deref(),
            ]
        });
        top.into_iter().chain(shapes).flatten()
    }
}

/// One more shape of body; see [`EventSpec::shapes`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyShape {
    pub when: Condition,
    #[serde(default)]
    pub id: Option<ValueSource>,
    #[serde(default, rename = "type")]
    pub event_type: Option<ValueSource>,
    #[serde(default)]
    pub occurred_at: Option<TimeSource>,
    #[serde(default)]
    pub account: Option<ValueSource>,
}

/// A test on a request: a JSON path present in the body (or equal to `equals`, compared
/// as text), or a header present (or equal); `absent`: a path that must not be there.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(default)]
    pub json: Option<JsonPath>,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub absent: Option<JsonPath>,
}

impl Condition {
    pub fn holds(&self, doc: &serde_json::Value, headers: &http::HeaderMap) -> bool {
        let found = match (&self.json, &self.header) {
            (Some(p), _) => p.get(doc).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            (None, Some(h)) => headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            (None, None) => Some(String::new()),
        };
        let matched = match (&found, &self.equals) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(e)) => v == e,
        };
        matched && self.absent.as_ref().is_none_or(|p| p.get(doc).is_none())
    }
}

/// A value taken from the request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueSource {
    /// A JSON path into the body (for a batch, into the item).
    Json(JsonPath),
    /// A JSON path into the whole body even in a batch: a value the provider writes once
    /// beside its items (Salesforce's `OrganizationId` beside its `Notification`s).
    BodyJson(JsonPath),
    /// A request header.
    Header(String),
    /// A fixed value.
    Literal(String),
    /// The SHA-256 of the raw body, hex: the fallback for providers that send no event
    /// id. Weaker: two identical bodies count as one event.
    BodySha256(bool),
    /// The values at several JSON paths, joined by `separator` (Adyen's `pspReference`
    /// and `eventCode`, which only together name a notification); missing when any is.
    Join(JoinSpec),
}

/// `{ join = { json = ["a", "b"], separator = ":" } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    pub json: Vec<JsonPath>,
    #[serde(default = "default_join_separator")]
    pub separator: String,
}

fn default_join_separator() -> String {
    ":".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSource {
    pub json: JsonPath,
    pub format: TimeFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    UnixSeconds,
    /// Unix seconds with a fraction (Front's `emitted_at`, `1553610154.343`): milliseconds
    /// kept, finer digits dropped.
    UnixSecondsFractional,
    UnixMilliseconds,
    Rfc3339,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedPolicy {
    /// Counted and dropped.
    #[default]
    Drop,
    /// Delivered as `<connector>.<provider type>` with the provider payload as `data`.
    PassThrough,
}

/// How one provider event type becomes a unified event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// A JSONata predicate over the provider event: the mapping applies only when it is
    /// `true` (GitHub's `pull_request` is opened, closed or merged by its `action`).
    #[serde(default)]
    pub when: Option<String>,
    /// The unified event type, e.g. `payments.charge.refunded`.
    #[serde(rename = "type")]
    pub unified_type: String,
    /// A JSONata expression over the provider event; its result is the unified `data`.
    pub data: String,
    /// `data` gives a list: one unified event per element, in order (a notification
    /// that names several records, as Copper's `ids`). A single object is one event.
    #[serde(default)]
    pub many: bool,
}

/// The mappings of one provider event type, tried in order; the first whose `when`
/// holds applies. Written as one table (`[mappings."t"]`) or an array of tables
/// (`[[mappings."t"]]`).
#[derive(Debug, Clone)]
pub struct MappingCases(pub Vec<MappingSpec>);

impl<'de> Deserialize<'de> for MappingCases {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Cases;
        impl<'de> serde::de::Visitor<'de> for Cases {
            type Value = MappingCases;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping table or an array of mapping tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<MappingCases, A::Error> {
                let one = MappingSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(MappingCases(vec![one]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<MappingCases, A::Error> {
                let many = Vec::<MappingSpec>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(MappingCases(many))
            }
        }
        d.deserialize_any(Cases)
    }
}
/// A handshake the connector answers (see [`crate::handshake`] for what each kind does).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Handshake {
    EchoQuery {
        param: String,
        #[serde(default = "default_method")]
        method: String,
        /// A query parameter that must equal one of the account's secrets for the echo
        /// to be given (Meta's `hub.verify_token`); absent: none is required.
        #[serde(default)]
        verify_param: Option<String>,
    },
    EchoHeader {
        header: String,
        /// Answer `{reply_field: <value>}` as JSON instead of the header back (Okta's
        /// `X-Okta-Verification-Challenge` → `{"verification": …}`).
        #[serde(default)]
        reply_field: Option<String>,
    },
    EchoJson {
        when: JsonPath,
        equals: String,
        from: JsonPath,
        reply_field: String,
    },
    HmacJson {
        when: JsonPath,
        equals: String,
        from: JsonPath,
    },
    /// A subscription the provider asks to be confirmed by a GET of a URL it sends (AWS
    /// SNS `SubscriptionConfirmation`'s `SubscribeURL`), after the signature checked:
    /// the ingress GETs `url` — only `https://` on one of `hosts` — and answers 200 once
    /// that succeeded, 503 if it did not (the provider asks again).
    ConfirmUrl {
        when: Condition,
        url: JsonPath,
        hosts: Vec<String>,
    },
    /// A `HEAD` on the webhook URL, answered 200 with an empty body before anything else
    /// (Trello creates a webhook, Mandrill adds one, only once its URL answers so).
    HeadCheck {},
    /// A fixed answer to a signed request the condition picks out (Discord's PINGs:
    /// interactions answer `{"type":1}`, webhook events 204 with no body).
    Reply {
        when: Condition,
        #[serde(default = "default_status")]
        status: u16,
        #[serde(default)]
        body: String,
    },
    /// A value the provider hands over once, unsigned, to finish the subscription
    /// (Notion's `{"verification_token": …}`, also the key it signs with from then on):
    /// a body that is a JSON object of exactly `field`, a string, on a request without
    /// the signature's `header`. The ingress keeps it sealed for the account, for the
    /// operator to read, and answers 200; it is never published or logged.
    CaptureSecret { field: String, header: String },
    /// A key the provider publishes for its own test requests (Mandrill signs the test
    /// POST of a new webhook with `test-webhook` when its HEAD check failed). A request
    /// that verifies with it, and not with the account's keys, is answered 200 `{}` and
    /// never stored or published: anyone can sign with a published key.
    TestKey { key: String },
}

fn default_status() -> u16 {
    200
}

fn default_method() -> String {
    "POST".into()
}
