//! Providers' signed bytes built here by hand, apart from `sign`, for the schemes whose
//! construction is easy to get subtly wrong and for which the provider publishes no
//! example signature: the catalog tests sign with the connector's own template, so they
//! cannot catch a template that differs from what the provider signs.

use base64::Engine;
use hmac::{Hmac, Mac};

use super::catalog_tests::verify_at;
use super::VerifyError;

fn hmac_sha1_b64(key: &str, message: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn hmac_sha256(key: &str, message: &str) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Mandrill: the webhook URL, then `mandrill_events` and its decoded value (the only
/// parameter), HMAC-SHA1 with the webhook key, base64
/// (mailchimp.com/developer/transactional/guides/track-respond-activity-webhooks/).
#[test]
fn mandrill_signs_the_url_then_the_decoded_parameters() {
    let url = "https://hooks.example.com/v1/webhooks/mandrill/acct";
    let events = r#"[{"event":"send","_id":"abc123","ts":1727775012}]"#;
    let body = format!(
        "mandrill_events={}",
        form_urlencoded::byte_serialize(events.as_bytes()).collect::<String>()
    );
    let sig = hmac_sha1_b64("webhook-key", &format!("{url}mandrill_events{events}"));
    let form = ("content-type", "application/x-www-form-urlencoded");
    let check = |url: &str, body: &str, key: &str| {
        verify_at("mandrill", url, &[("X-Mandrill-Signature", &sig), form], body, key, 0)
    };
    assert_eq!(check(url, &body, "webhook-key"), Ok(()));
    assert_eq!(
        check(url, &body.replace("send", "open"), "webhook-key"),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        check(&format!("{url}/"), &body, "webhook-key"),
        Err(VerifyError::Mismatch)
    );
    // The URL check Mandrill sends when a webhook is added: an empty batch, signed with
    // the generic key.
    let test_sig = hmac_sha1_b64("test-webhook", &format!("{url}mandrill_events[]"));
    assert_eq!(
        verify_at(
            "mandrill",
            url,
            &[("X-Mandrill-Signature", &test_sig), form],
            "mandrill_events=%5B%5D",
            "test-webhook",
            0
        ),
        Ok(())
    );
}

/// Trello: the raw body, then the callback URL, HMAC-SHA1 with the application secret,
/// base64 (developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/).
#[test]
fn trello_signs_the_body_then_the_callback_url() {
    let url = "https://hooks.example.com/v1/webhooks/trello/acct?board=marketing";
    let body = r#"{"action":{"id":"a1","type":"updateCard"},"model":{"id":"b1"}}"#;
    let sig = hmac_sha1_b64("app-secret", &format!("{body}{url}"));
    let h = [("X-Trello-Webhook", sig.as_str())];
    assert_eq!(verify_at("trello", url, &h, body, "app-secret", 0), Ok(()));
    // Another query string is another callback URL.
    let other = url.replace("marketing", "sales");
    assert_eq!(
        verify_at("trello", &other, &h, body, "app-secret", 0),
        Err(VerifyError::Mismatch)
    );
}

/// Twitch: message id, then the timestamp as sent (nanoseconds), then the body,
/// HMAC-SHA256 hex after `sha256=`; ten minutes of tolerance
/// (dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message).
#[test]
fn twitch_signs_id_timestamp_and_body() {
    let (id, ts) = ("e76c6bd4-55c9-4987-8304-da1588d8988b", "2023-11-14T22:13:20.123456789Z");
    let at = 1_700_000_000; // ts, in seconds
    let body = r#"{"subscription":{"type":"channel.follow"},"event":{"user_id":"1234"}}"#;
    let sig = format!(
        "sha256={}",
        hex::encode(hmac_sha256("s3cret-of-ten", &format!("{id}{ts}{body}")))
    );
    let h = [
        ("Twitch-Eventsub-Message-Id", id),
        ("Twitch-Eventsub-Message-Timestamp", ts),
        ("Twitch-Eventsub-Message-Signature", sig.as_str()),
    ];
    let check = |body: &str, now: i64| verify_at("twitch", "https://x/y", &h, body, "s3cret-of-ten", now);
    assert_eq!(check(body, at), Ok(()));
    assert_eq!(check(body, at + 599), Ok(()));
    assert_eq!(check(body, at + 601), Err(VerifyError::OutOfTolerance(600)));
    assert_eq!(check(&body.replace("1234", "4321"), at), Err(VerifyError::Mismatch));
}

/// Front application webhooks: the millisecond timestamp, a colon, the raw body,
/// HMAC-SHA256 base64 with the app secret (dev.frontapp.com/docs/application-webhooks).
#[test]
fn front_signs_the_millisecond_timestamp_colon_body() {
    let body = r#"{"type":"sync","authorization":{"id":"cmp_abc"}}"#;
    let ts = "1700000000123";
    let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha256("app-secret", &format!("{ts}:{body}")));
    let h = [("X-Front-Signature", sig.as_str()), ("X-Front-Request-Timestamp", ts)];
    assert_eq!(
        verify_at("front", "https://x/y", &h, body, "app-secret", 1_700_000_000),
        Ok(())
    );
    assert_eq!(
        verify_at("front", "https://x/y", &h, body, "app-secret", 1_700_000_000 + 301),
        Err(VerifyError::OutOfTolerance(300))
    );
}

/// Close: HMAC-SHA256 of timestamp ‖ body, hex, keyed with the signature key decoded
/// from hex (developer.close.com/api/resources/webhooks, "Webhook signatures").
#[test]
fn close_signs_with_the_hex_decoded_key() {
    let key_hex = "4f1a0b3c2d9e8f7061524334251607f8e9dacbbdaeff00112233445566778899";
    let key = hex::decode(key_hex).unwrap();
    let (ts, body) = (
        "1700000000",
        r#"{"subscription_id":"whsub_1","event":{"id":"ev_1","object_type":"lead"}}"#,
    );
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{ts}{body}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    let h = [("close-sig-timestamp", ts), ("close-sig-hash", sig.as_str())];
    let check = |body: &str, secret: &str| verify_at("close", "https://x/y", &h, body, secret, 1_700_000_000);
    assert_eq!(check(body, key_hex), Ok(()));
    // The key's text used as is (not decoded) is not Close's key.
    let as_text = hex::encode(hmac_sha256(key_hex, &format!("{ts}{body}")));
    assert_ne!(as_text, sig);
    assert_eq!(
        check(&body.replace("lead", "contact"), key_hex),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(check(body, "not hex"), Err(VerifyError::Mismatch));
}
