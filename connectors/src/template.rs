//! The signed-bytes template: how a provider builds the bytes it signs, written in the
//! connector file as text such as `"{timestamp}.{body}"` or `"v0:{timestamp}:{body}"`.
//!
//! Placeholders: `{body}` (the raw body), `{timestamp}` (as sent), `{method}`, `{url}`
//! (the full URL as the provider saw it), `{header:Name}`, `{json:path}` (a field of the
//! JSON body, Mailgun; `{json_or_empty:path}`: empty when absent, Adyen), `{form_sorted}` (form parameters sorted by name, each name then
//! value with no separator, Twilio), `{body_crc32}` (the body's CRC-32 in decimal,
//! PayPal), `{secret}` (the account's secret being tried; `x509` only: PayPal's webhook
//! id). `{{` and `}}` are literal
//! braces. Parsed once at load; building borrows the body when the template is only it.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use crate::jsonpath::{JsonPath, PathError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Body,
    Timestamp,
    Method,
    Url,
    Header(String),
    Json(JsonPath),
    /// A field of the JSON document, or nothing when it is absent or null (Adyen signs
    /// an absent `originalReference` as an empty string).
    JsonOrEmpty(JsonPath),
    FormSorted,
    /// The body's CRC-32 (IEEE), in decimal (PayPal).
    BodyCrc32,
    /// The account's secret being tried (PayPal's webhook id), for schemes that say so.
    Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template may draw on for one request.
pub struct Inputs<'a> {
    pub body: &'a [u8],
    pub timestamp: Option<&'a str>,
    pub method: &'a str,
    pub url: &'a str,
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
    /// The parsed JSON body, when the template uses `{json:…}`.
    pub json: Option<&'a serde_json::Value>,
    /// The form parameters, when the template uses `{form_sorted}`.
    pub form: Option<&'a [(String, String)]>,
    /// The account's secret being tried, when the template uses `{secret}` (`x509`).
    pub secret: Option<&'a str>,
}

/// Why a signed-bytes template does not parse; each says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template is empty")]
    Empty,
    #[error("template {text:?}: '{{' at {at} is never closed")]
    Unclosed { text: String, at: usize },
    #[error("template {text:?}: lone '}}' at {at} (write '}}}}')")]
    LoneBrace { text: String, at: usize },
    #[error("template {text:?}: unknown placeholder {{{name}}} (known: {{body}}, {{timestamp}}, {{method}}, {{url}}, {{header:Name}}, {{json:path}}, {{json_or_empty:path}}, {{form_sorted}}, {{body_crc32}}, {{secret}})")]
    UnknownPlaceholder { text: String, name: String },
    #[error("template {text:?}: {error}")]
    Path { text: String, error: PathError },
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let close = text[i..].find('}').ok_or_else(|| TemplateError::Unclosed {
                        text: text.to_string(),
                        at: i,
                    })?;
                    let name = &text[i + 1..i + close];
                    let part = match name {
                        "body" => Part::Body,
                        "timestamp" => Part::Timestamp,
                        "method" => Part::Method,
                        "url" => Part::Url,
                        "form_sorted" => Part::FormSorted,
                        "body_crc32" => Part::BodyCrc32,
                        "secret" => Part::Secret,
                        _ if name.starts_with("json_or_empty:") => {
                            let path = &name["json_or_empty:".len()..];
                            Part::JsonOrEmpty(JsonPath::parse(path).map_err(|error| TemplateError::Path {
                                text: text.to_string(),
                                error,
                            })?)
                        }
                        _ => match (name.strip_prefix("header:"), name.strip_prefix("json:")) {
                            (Some(h), _) if !h.is_empty() => Part::Header(h.to_ascii_lowercase()),
                            (_, Some(p)) => Part::Json(JsonPath::parse(p).map_err(|error| TemplateError::Path {
                                text: text.to_string(),
                                error,
                            })?),
                            _ => {
                                return Err(TemplateError::UnknownPlaceholder {
                                    text: text.to_string(),
                                    name: name.to_string(),
                                })
                            }
                        },
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                    while let Some((j, _)) = chars.peek() {
                        if *j <= i + close {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                '}' => {
                    return Err(TemplateError::LoneBrace {
                        text: text.to_string(),
                        at: i,
                    })
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        if parts.is_empty() {
            return Err(TemplateError::Empty);
        }
        Ok(Self { parts })
    }

    pub fn uses_timestamp(&self) -> bool {
        self.parts.contains(&Part::Timestamp)
    }

    pub fn uses_json(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Json(_) | Part::JsonOrEmpty(_)))
    }

    pub fn uses_form(&self) -> bool {
        self.parts.contains(&Part::FormSorted)
    }

    /// Whether the template signs an account secret (`{secret}`).
    pub fn uses_secret(&self) -> bool {
        self.parts.contains(&Part::Secret)
    }

    /// Whether the template signs the URL.
    pub fn uses_url(&self) -> bool {
        self.parts.contains(&Part::Url)
    }

    /// The signed bytes; `None` names the missing input.
    pub fn build<'a>(&self, inputs: &Inputs<'a>) -> Result<Cow<'a, [u8]>, &'static str> {
        if let [Part::Body] = self.parts.as_slice() {
            return Ok(Cow::Borrowed(inputs.body));
        }
        let mut out = Vec::with_capacity(inputs.body.len() + 64);
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Body => out.extend_from_slice(inputs.body),
                Part::Timestamp => out.extend_from_slice(inputs.timestamp.ok_or("timestamp")?.as_bytes()),
                Part::Method => out.extend_from_slice(inputs.method.as_bytes()),
                Part::Url => out.extend_from_slice(inputs.url.as_bytes()),
                Part::Header(h) => out.extend_from_slice((inputs.header)(h).ok_or("header")?.as_bytes()),
                Part::Json(p) => {
                    let v = inputs.json.and_then(|doc| p.get_string(doc)).ok_or("json")?;
                    out.extend_from_slice(v.as_bytes());
                }
                Part::JsonOrEmpty(p) => {
                    let doc = inputs.json.ok_or("json")?;
                    if let Some(v) = p.get_string(doc) {
                        out.extend_from_slice(v.as_bytes());
                    }
                }
                Part::BodyCrc32 => out.extend_from_slice(crc32fast::hash(inputs.body).to_string().as_bytes()),
                Part::Secret => out.extend_from_slice(inputs.secret.ok_or("secret")?.as_bytes()),
                Part::FormSorted => {
                    // By name, then by value, each pair once: as Twilio's own validators
                    // sign repeated parameters (twilio-python's compute_signature).
                    let mut params: Vec<&(String, String)> = inputs.form.ok_or("form")?.iter().collect();
                    params.sort();
                    params.dedup();
                    for (k, v) in params {
                        out.extend_from_slice(k.as_bytes());
                        out.extend_from_slice(v.as_bytes());
                    }
                }
            }
        }
        Ok(Cow::Owned(out))
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(t: &str, body: &[u8]) -> Vec<u8> {
        let none = |_: &str| -> Option<&str> { Some("hv") };
        Template::parse(t)
            .unwrap()
            .build(&Inputs {
                body,
                timestamp: Some("123"),
                method: "POST",
                url: "https://x/y",
                header: &none,
                json: None,
                form: Some(&[("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())]),
                secret: None,
            })
            .unwrap()
            .into_owned()
    }

    #[test]
    fn templates_build_the_signed_bytes() {
        assert_eq!(build("{timestamp}.{body}", b"{}"), b"123.{}");
        assert_eq!(build("v0:{timestamp}:{body}", b"b"), b"v0:123:b");
        assert_eq!(build("{method}{url}{header:X-A}", b""), b"POSThttps://x/yhv");
        assert_eq!(build("{{x}}{body}", b"b"), b"{x}b");
        assert_eq!(build("{url}{form_sorted}", b""), b"https://x/ya1b2");
    }

    #[test]
    fn absent_fields_may_sign_as_empty() {
        let none = |_: &str| -> Option<&str> { None };
        let doc = serde_json::json!({"a": "x", "n": 10, "z": null});
        let t = Template::parse("{json_or_empty:a}:{json_or_empty:b}:{json_or_empty:n}:{json_or_empty:z}").unwrap();
        assert!(t.uses_json());
        let built = t
            .build(&Inputs {
                body: b"",
                timestamp: None,
                method: "POST",
                url: "https://x/y",
                header: &none,
                json: Some(&doc),
                form: None,
                secret: None,
            })
            .unwrap();
        assert_eq!(&*built, b"x::10:");
    }

    #[test]
    fn bad_templates_say_why() {
        assert!(Template::parse("{bodyy}")
            .unwrap_err()
            .to_string()
            .contains("unknown placeholder"));
        assert!(Template::parse("{body")
            .unwrap_err()
            .to_string()
            .contains("never closed"));
        assert!(Template::parse("").is_err());
        assert!(Template::parse("a}b").is_err());
    }
}
