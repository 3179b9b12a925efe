//! Handshakes: requests a provider sends to prove the endpoint is ours before it sends
//! events. Declared in the connector file, answered by the ingress, never stored or
//! published.
//!
//! - `echo_query` (Microsoft Graph `validationToken`, Dropbox `challenge` on GET): the
//!   parameter's value back as `text/plain`. Unsigned by the provider; it only reflects
//!   the caller's own token.
//! - `echo_header` (Asana `X-Hook-Secret`): the header back. Unsigned, likewise.
//! - `echo_json` (Slack `url_verification`): a JSON field back, after the signature check.
//! - `head_check` (Trello, Mandrill): a `HEAD` on the webhook URL is answered 200 with an
//!   empty body. Unsigned (a HEAD has nothing to sign) and reflecting nothing.
//! - `hmac_json` (Zoom `endpoint.url_validation`): `plainToken` and its HMAC-SHA256 with
//!   the account's secret, hex, after the signature check.
//! - `capture_secret` (Notion's `verification_token`): an unsigned body of that one
//!   field, which [`captured`] picks out; the ingress keeps it for the operator.
//! - `test_key` (Mandrill's `test-webhook`): a request that verifies only with a key the
//!   provider publishes for tests is answered 200 and never stored ([`test_keys`]).

use hmac::{Hmac, Mac};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::model::Handshake;

/// The answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// A header to send back (name, value).
    pub header: Option<(String, String)>,
    /// A URL to GET before answering (`confirm_url`); already checked to be `https://`
    /// on an allowed host.
    pub confirm: Option<String>,
}

/// Longest echoed value: a handshake must not become a reflection amplifier.
const MAX_ECHO: usize = 1024;

/// Handshakes answered before any signature check (the provider signs nothing).
/// `secrets` are the account's: a `verify_param` must match one of them.
pub fn unsigned(
    handshakes: &[Handshake],
    method: &str,
    query: Option<&str>,
    header: &dyn Fn(&str) -> Option<String>,
    secrets: &[&str],
) -> Option<Reply> {
    for h in handshakes {
        match h {
            Handshake::HeadCheck {} if method.eq_ignore_ascii_case("HEAD") => {
                return Some(Reply {
                    status: 200,
                    content_type: "text/plain",
                    body: String::new(),
                    header: None,
                    confirm: None,
                });
            }
            Handshake::EchoQuery {
                param,
                method: m,
                verify_param,
            } if m.eq_ignore_ascii_case(method) => {
                let query_value = |name: &str| {
                    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                if let Some(name) = verify_param {
                    let given = query_value(name).unwrap_or_default();
                    let known = secrets
                        .iter()
                        .any(|s| !given.is_empty() && bool::from(s.as_bytes().ct_eq(given.as_bytes())));
                    if !known {
                        continue;
                    }
                }
                if let Some(v) = query_value(param).filter(|v| !v.is_empty() && v.len() <= MAX_ECHO) {
                    return Some(Reply {
                        status: 200,
                        content_type: "text/plain",
                        body: v,
                        header: None,
                        confirm: None,
                    });
                }
            }
            Handshake::EchoHeader {
                header: name,
                reply_field: Some(field),
            } => {
                if let Some(v) = header(name).filter(|v| !v.is_empty() && v.len() <= MAX_ECHO) {
                    return Some(Reply {
                        status: 200,
                        content_type: "application/json",
                        body: serde_json::json!({ field.as_str(): v }).to_string(),
                        header: None,
                        confirm: None,
                    });
                }
            }
            Handshake::EchoHeader {
                header: name,
                reply_field: None,
            } => {
                if let Some(v) = header(name).filter(|v| !v.is_empty() && v.len() <= MAX_ECHO) {
                    return Some(Reply {
                        status: 200,
                        content_type: "application/json",
                        body: "{}".into(),
                        header: Some((name.clone(), v)),
                        confirm: None,
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// The value of a `capture_secret` handshake when this request is one: no signature
/// `header`, and a body that is a JSON object of exactly that field, a string of at
/// most [`MAX_ECHO`] bytes. Anything else goes on to the signature check (and fails it).
pub fn captured(handshakes: &[Handshake], body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    handshakes.iter().find_map(|h| match h {
        Handshake::CaptureSecret { field, header: signed }
            if header(signed).is_none() && body.len() <= 2 * MAX_ECHO =>
        {
            let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
                return None;
            };
            if doc.len() != 1 {
                return None;
            }
            doc.get(field)?
                .as_str()
                .filter(|v| !v.is_empty() && v.len() <= MAX_ECHO)
                .map(str::to_string)
        }
        _ => None,
    })
}

/// Handshakes answered after the signature check, from the JSON body.
pub fn signed(handshakes: &[Handshake], doc: &Value, headers: &http::HeaderMap, secret: Option<&str>) -> Option<Reply> {
    for h in handshakes {
        match h {
            Handshake::Reply { when, status, body } if when.holds(doc, headers) => {
                return Some(Reply {
                    status: if matches!(status, 200 | 202 | 204) {
                        *status
                    } else {
                        200
                    },
                    content_type: "application/json",
                    body: if *status == 204 { String::new() } else { body.clone() },
                    header: None,
                    confirm: None,
                });
            }
            Handshake::EchoJson {
                when,
                equals,
                from,
                reply_field,
            } if when.get_string(doc).as_deref() == Some(equals) => {
                let v = from.get_string(doc).filter(|v| v.len() <= MAX_ECHO)?;
                // An empty reply field: the value itself, as text (Twitch's challenge).
                let (content_type, body) = if reply_field.is_empty() {
                    ("text/plain", v)
                } else {
                    (
                        "application/json",
                        serde_json::json!({ reply_field.as_str(): v }).to_string(),
                    )
                };
                return Some(Reply {
                    status: 200,
                    content_type,
                    body,
                    header: None,
                    confirm: None,
                });
            }
            Handshake::HmacJson { when, equals, from } if when.get_string(doc).as_deref() == Some(equals) => {
                let plain = from.get_string(doc).filter(|v| v.len() <= MAX_ECHO)?;
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret?.as_bytes()).ok()?;
                mac.update(plain.as_bytes());
                let encrypted = hex::encode(mac.finalize().into_bytes());
                return Some(Reply {
                    status: 200,
                    content_type: "application/json",
                    body: serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted }).to_string(),
                    header: None,
                    confirm: None,
                });
            }
            Handshake::ConfirmUrl { when, url, hosts } if when.holds(doc, headers) => {
                let target = url.get_string(doc)?;
                if !crate::signature::fetched::allowed_https_host(&target, hosts) {
                    return Some(Reply {
                        status: 400,
                        content_type: "application/json",
                        body: serde_json::json!({
                            "error": "confirm_host_not_allowed",
                            "message": "the confirmation URL is not https on a host the connector allows",
                        })
                        .to_string(),
                        header: None,
                        confirm: None,
                    });
                }
                return Some(Reply {
                    status: 200,
                    content_type: "application/json",
                    body: serde_json::json!({ "confirmed": true }).to_string(),
                    header: None,
                    confirm: Some(target),
                });
            }
            _ => {}
        }
    }
    None
}

/// The keys the provider publishes for its test requests (`test_key`): a request that
/// fails with the account's keys and verifies with one of these gets [`test_reply`].
pub fn test_keys(handshakes: &[Handshake]) -> Vec<&str> {
    handshakes
        .iter()
        .filter_map(|h| match h {
            Handshake::TestKey { key } => Some(key.as_str()),
            _ => None,
        })
        .collect()
}

/// The answer to a provider's test request: 200 `{}`, nothing stored.
pub fn test_reply() -> Reply {
    Reply {
        status: 200,
        content_type: "application/json",
        body: "{}".into(),
        header: None,
        confirm: None,
    }
}

/// Whether the connector takes `method`: a method it delivers events with, or one a
/// handshake answers (GET handshakes open the route to GET).
pub fn accepts_method(methods: &[String], handshakes: &[Handshake], method: &str) -> bool {
    methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        || handshakes.iter().any(|h| match h {
            Handshake::EchoQuery { method: m, .. } => m.eq_ignore_ascii_case(method),
            Handshake::HeadCheck {} => method.eq_ignore_ascii_case("HEAD"),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(toml_text: &str) -> Vec<Handshake> {
        #[derive(serde::Deserialize)]
        struct F {
            handshake: Vec<Handshake>,
        }
        toml::from_str::<F>(toml_text).unwrap().handshake
    }

    #[test]
    fn notion_verification_token_is_captured_only_unsigned_and_alone() {
        let h = parse("[[handshake]]\nkind = \"capture_secret\"\nfield = \"verification_token\"\nheader = \"X-Notion-Signature\"\n");
        let none = |_: &str| None;
        let signed = |n: &str| (n == "X-Notion-Signature").then(|| "sha256=00".to_string());
        // The shape of Notion's request for a new subscription
        // (https://developers.notion.com/reference/webhooks).
        let body = br#"{"verification_token":"secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl"}"#;
        assert_eq!(
            captured(&h, body, &none).as_deref(),
            Some("secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl")
        );
        assert!(captured(&h, body, &signed).is_none(), "a signed request is an event");
        assert!(captured(&h, br#"{"verification_token":"a","id":"b"}"#, &none).is_none());
        assert!(captured(&h, br#"{"verification_token":""}"#, &none).is_none());
        assert!(captured(&h, br#"{"verification_token":7}"#, &none).is_none());
        assert!(captured(&h, br#"["verification_token"]"#, &none).is_none());
        let long = format!(r#"{{"verification_token":"{}"}}"#, "x".repeat(MAX_ECHO + 1));
        assert!(captured(&h, long.as_bytes(), &none).is_none());
    }

    #[test]
    fn graph_validation_token_is_echoed_as_text() {
        let h = parse("[[handshake]]\nkind = \"echo_query\"\nparam = \"validationToken\"\n");
        let none = |_: &str| None;
        let r = unsigned(
            &h,
            "POST",
            Some("validationToken=Validation%3A+Testing+client+application"),
            &none,
            &[],
        )
        .unwrap();
        assert_eq!(r.body, "Validation: Testing client application");
        assert_eq!(r.content_type, "text/plain");
        assert!(unsigned(&h, "POST", None, &none, &[]).is_none());
        assert!(unsigned(&h, "GET", Some("validationToken=x"), &none, &[]).is_none());
    }

    /// Trello's and Mandrill's URL checks: a HEAD answered 200, empty; nothing else is.
    #[test]
    fn a_head_check_answers_head_only() {
        let h = parse("[[handshake]]\nkind = \"head_check\"\n");
        let none = |_: &str| None;
        let r = unsigned(&h, "HEAD", None, &none, &[]).unwrap();
        assert_eq!((r.status, r.body.as_str(), r.header.clone()), (200, "", None));
        assert!(unsigned(&h, "POST", None, &none, &[]).is_none());
        assert!(unsigned(&h, "GET", None, &none, &[]).is_none());
        let post = vec!["POST".to_string()];
        assert!(accepts_method(&post, &h, "HEAD"));
        assert!(!accepts_method(&post, &h, "GET"));
        assert!(!accepts_method(&post, &[], "HEAD"), "HEAD only where declared");
    }

    #[test]
    fn asana_hook_secret_is_echoed_as_a_header() {
        let h = parse("[[handshake]]\nkind = \"echo_header\"\nheader = \"X-Hook-Secret\"\n");
        let hdr = |n: &str| (n == "X-Hook-Secret").then(|| "s3cr3t".to_string());
        assert_eq!(
            unsigned(&h, "POST", None, &hdr, &[]).unwrap().header,
            Some(("X-Hook-Secret".into(), "s3cr3t".into()))
        );
    }

    /// Meta's verification request, as its Graph API webhooks guide shows it
    /// (https://developers.facebook.com/docs/graph-api/webhooks/getting-started):
    /// `hub.challenge` is echoed only when `hub.verify_token` is the account's.
    #[test]
    fn meta_challenge_needs_the_verify_token() {
        let h = parse("[[handshake]]\nkind = \"echo_query\"\nmethod = \"GET\"\nparam = \"hub.challenge\"\nverify_param = \"hub.verify_token\"\n");
        let none = |_: &str| None;
        let query = Some("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock");
        let r = unsigned(&h, "GET", query, &none, &["app-secret", "meatyhamhock"]).unwrap();
        assert_eq!(
            (r.status, r.body.as_str(), r.content_type),
            (200, "1158201444", "text/plain")
        );
        assert!(unsigned(&h, "GET", query, &none, &["app-secret"]).is_none());
        assert!(unsigned(&h, "GET", query, &none, &[]).is_none());
        let no_token = Some("hub.mode=subscribe&hub.challenge=1158201444");
        assert!(unsigned(&h, "GET", no_token, &none, &["meatyhamhock"]).is_none());
    }

    /// Okta's one-time verification (https://developer.okta.com/docs/concepts/event-hooks/):
    /// the challenge header's value comes back as `{"verification": …}`.
    #[test]
    fn okta_verification_is_answered_as_json() {
        let h = parse("[[handshake]]\nkind = \"echo_header\"\nheader = \"X-Okta-Verification-Challenge\"\nreply_field = \"verification\"\n");
        let hdr = |n: &str| {
            (n == "X-Okta-Verification-Challenge").then(|| "X3ga48mbVYuJq3LSLBFqRlimu3RqzmvpjLq9w9q7".to_string())
        };
        let r = unsigned(&h, "GET", None, &hdr, &[]).unwrap();
        assert_eq!(r.body, r#"{"verification":"X3ga48mbVYuJq3LSLBFqRlimu3RqzmvpjLq9w9q7"}"#);
        assert_eq!(r.header, None);
    }

    /// Twitch's callback verification (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request):
    /// the challenge alone, as text. Front's: the header's value in a JSON body.
    #[test]
    fn twitch_and_front_challenges_from_the_shipped_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
        let catalog = crate::catalog::Catalog::load_dir(&dir).unwrap();
        let twitch = &catalog.get("twitch").unwrap().handshakes;
        let doc = json!({"challenge": "pogchamp-kappa-360noscope-vohiyo", "subscription": {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "status": "webhook_callback_verification_pending", "type": "channel.follow"}});
        let r = signed(twitch, &doc, &http::HeaderMap::new(), None).unwrap();
        assert_eq!(
            (r.content_type, r.body.as_str()),
            ("text/plain", "pogchamp-kappa-360noscope-vohiyo")
        );
        let enabled = json!({"subscription": {"status": "enabled"}, "event": {}});
        assert!(signed(twitch, &enabled, &http::HeaderMap::new(), None).is_none());

        let front = &catalog.get("front").unwrap().handshakes;
        let hdr = |n: &str| (n == "X-Front-Challenge").then(|| "4d0a2c5b".to_string());
        let r = unsigned(front, "POST", None, &hdr, &[]).unwrap();
        assert_eq!(r.body, r#"{"challenge":"4d0a2c5b"}"#);
    }

    #[test]
    fn slack_challenge_and_zoom_validation() {
        let slack = parse("[[handshake]]\nkind = \"echo_json\"\nwhen = \"type\"\nequals = \"url_verification\"\nfrom = \"challenge\"\nreply_field = \"challenge\"\n");
        let doc = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"});
        assert_eq!(
            signed(&slack, &doc, &http::HeaderMap::new(), None).unwrap().body,
            r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#
        );
        assert!(signed(
            &slack,
            &json!({"type": "event_callback"}),
            &http::HeaderMap::new(),
            None
        )
        .is_none());

        let zoom = parse("[[handshake]]\nkind = \"hmac_json\"\nwhen = \"event\"\nequals = \"endpoint.url_validation\"\nfrom = \"payload.plainToken\"\n");
        let doc = json!({"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}});
        let r: Value = serde_json::from_str(
            &signed(&zoom, &doc, &http::HeaderMap::new(), Some("secret-token"))
                .unwrap()
                .body,
        )
        .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"secret-token").unwrap();
        mac.update(b"qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(r["encryptedToken"], hex::encode(mac.finalize().into_bytes()));
        assert_eq!(r["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    }

    #[test]
    fn discord_pings_get_their_fixed_answers() {
        // https://discord.com/developers/docs/interactions/overview (PING: type 1) and
        // https://discord.com/developers/docs/events/webhook-events (PING: type 0, 204).
        let h = parse(
            "[[handshake]]\nkind = \"reply\"\nwhen = { json = \"type\", equals = \"1\", absent = \"event\" }\nbody = '{\"type\":1}'\n\
             [[handshake]]\nkind = \"reply\"\nwhen = { json = \"type\", equals = \"0\", absent = \"event\" }\nstatus = 204\n",
        );
        let none = http::HeaderMap::new();
        let ping = signed(
            &h,
            &json!({"id": "1", "type": 1, "application_id": "2", "token": "t"}),
            &none,
            None,
        )
        .unwrap();
        assert_eq!((ping.status, ping.body.as_str()), (200, r#"{"type":1}"#));
        let events_ping = signed(
            &h,
            &json!({"version": 1, "application_id": "2", "type": 0}),
            &none,
            None,
        )
        .unwrap();
        assert_eq!((events_ping.status, events_ping.body.as_str()), (204, ""));
        let event =
            json!({"version": 1, "application_id": "2", "type": 1, "event": {"type": "APPLICATION_AUTHORIZED"}});
        assert!(
            signed(&h, &event, &none, None).is_none(),
            "a webhook event is no handshake"
        );
        assert!(signed(&h, &json!({"id": "1", "type": 2}), &none, None).is_none());
    }
}
