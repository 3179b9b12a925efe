//! Providers' own published example values, each with its source: the requests their
//! documentation and official SDK tests show as valid must verify here, signed the way the
//! provider signs them — over the `https://` URL it called (which the ingress rebuilds from
//! `ingress.public_url` or a trusted proxy's headers, `ingress/src/called_url.rs`).

use super::catalog_tests::verify_at;
use super::VerifyError;

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Twilio's form body: the params of twilio-python's `tests/unit/test_request_validator.py`
/// (and twilio-node's `spec/validation.spec.js`), token `12345`.
const TWILIO_PARAMS: &str =
    "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn twilio(url: &str, body: &str, sig: &str, content_type: &str) -> Result<(), VerifyError> {
    verify_at(
        "twilio",
        url,
        &[("X-Twilio-Signature", sig), ("content-type", content_type)],
        body,
        "12345",
        1_700_000_000,
    )
}

#[test]
fn twilio_docs_example() {
    // https://www.twilio.com/docs/usage/webhooks/webhooks-security (the docs' values).
    let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    assert_eq!(twilio(TWILIO_URL, body, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", FORM.1), Ok(()));
    assert_eq!(
        twilio(
            TWILIO_URL,
            &body.replace("1234&", "1235&"),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
            FORM.1
        ),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn twilio_sdk_vectors_with_ports() {
    // Signed without a port; the request came with one (any port is stripped).
    let base = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    assert_eq!(twilio(TWILIO_URL, TWILIO_PARAMS, base, FORM.1), Ok(()));
    assert_eq!(
        twilio(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            TWILIO_PARAMS,
            base,
            FORM.1
        ),
        Ok(())
    );
    // Signed with a non-default port, as called.
    assert_eq!(
        twilio(
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            TWILIO_PARAMS,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            FORM.1
        ),
        Ok(())
    );
    // Signed with the default port added (:443 for https, :80 for http).
    assert_eq!(
        twilio(TWILIO_URL, TWILIO_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=", FORM.1),
        Ok(())
    );
    assert_eq!(
        twilio(
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            TWILIO_PARAMS,
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            FORM.1
        ),
        Ok(())
    );
}

#[test]
fn twilio_repeated_params_are_sorted_by_value_and_deduplicated() {
    // twilio-python test_request_validator.py: `Digits` three times, two of them equal.
    let body = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
    assert_eq!(twilio(TWILIO_URL, body, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", FORM.1), Ok(()));
}

/// twilio-node spec/validation.spec.js: an array parameter signs the same in either order.
#[test]
fn twilio_array_params_sign_the_same_in_either_order() {
    for body in [
        "MessagingBinding.Address=%2B1325xxxxxxx&MessagingBinding.Address=%2B1415xxxxxxx",
        "MessagingBinding.Address=%2B1415xxxxxxx&MessagingBinding.Address=%2B1325xxxxxxx",
    ] {
        assert_eq!(twilio(TWILIO_URL, body, "83O6e2vORAoJHUNzJjDWN1jz+BA=", FORM.1), Ok(()));
    }
}

#[test]
fn twilio_json_callbacks_sign_the_url_and_carry_the_body_hash() {
    // twilio-python / twilio-node: JSON bodies, `bodySHA256` in the query.
    let body = r#"{"property": "value", "boolean": true}"#;
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    assert_eq!(
        twilio(url, body, "a9nBmqA0ju/hNViExpshrM61xv4=", "application/json"),
        Ok(())
    );
    // A body that does not hash to bodySHA256 is refused, the URL signature regardless.
    assert_eq!(
        twilio(
            url,
            &body.replace("value", "other"),
            "a9nBmqA0ju/hNViExpshrM61xv4=",
            "application/json"
        ),
        Err(VerifyError::Mismatch)
    );
    // twilio-node: the hash as the only query parameter.
    let url =
        "https://mycompany.com/myapp.php?bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    assert_eq!(
        twilio(url, body, "y77kIzt2vzLz71DgmJGsen2scGs=", "application/json"),
        Ok(())
    );
    // twilio-node: `{}`, accepted only with :443 added.
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_eq!(
        twilio(url, "{}", "Ldidvp12m26NI7eqEvxnEpkd9Hc=", "application/json"),
        Ok(())
    );
}

fn hubspot_v3(url: &str, sig: &str, now_ms: i64) -> Result<(), VerifyError> {
    verify_at(
        "hubspot",
        url,
        &[
            ("X-HubSpot-Signature-v3", sig),
            ("X-HubSpot-Request-Timestamp", "1693657560000"),
            ("content-type", "application/json"),
        ],
        "{'example_field':'example_value'}",
        "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
        now_ms / 1000,
    )
}

#[test]
fn hubspot_v3_sdk_vector_and_the_decoded_uri() {
    // hubspot-api-python tests/spec/utils/test_signature.py::test_get_signature__v3.
    let url = "https://www.example.com/webhook_uri";
    assert_eq!(
        hubspot_v3(url, "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=", 1_693_657_560_000),
        Ok(())
    );
    assert_eq!(
        hubspot_v3(
            url,
            "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=",
            1_693_657_560_000 + 301_000
        ),
        Err(VerifyError::OutOfTolerance(300))
    );
    // The validating-requests page's table: `%3A`, `%28`, `%29` are decoded before
    // signing (signature computed by us with Python's hmac over the decoded URI).
    let encoded = "https://www.example.com/webhook_uri?name=a%3Ab%28c%29";
    assert_eq!(
        hubspot_v3(
            encoded,
            "oiuuqMwWY3iISfqYfp8kZvlcLdKwAbpCHZsMdClFUAk=",
            1_693_657_560_000
        ),
        Ok(())
    );
}

#[test]
fn square_sdk_vectors() {
    // square-python-sdk tests/integration/test_webhooks_helper.py.
    let body = r#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;
    let url = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
    let sig = [(
        "x-square-hmacsha256-signature",
        "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
    )];
    assert_eq!(
        verify_at("square", url, &sig, body, "Ibxx_5AKakO-3qeNVR61Dw", 0),
        Ok(())
    );
    // The same request over the URL the ingress saw behind a proxy does not verify:
    // which is why the signed URL comes from ingress.public_url.
    assert_eq!(
        verify_at(
            "square",
            "http://10.0.3.7:8080/679a4f3a-dcfa-49ee-bac5-9d0edad886b9",
            &sig,
            body,
            "Ibxx_5AKakO-3qeNVR61Dw",
            0
        ),
        Err(VerifyError::Mismatch)
    );
    let sig2 = [(
        "x-square-hmacsha256-signature",
        "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=",
    )];
    assert_eq!(
        verify_at(
            "square",
            "https://webhook.site/webhooks",
            &sig2,
            r#"{"data":{"type":"webhooks","id":">id<"}}"#,
            "signature-key",
            0
        ),
        Ok(())
    );
}

#[test]
fn slack_docs_example_slash_command() {
    // https://api.slack.com/authentication/verifying-requests-from-slack (and
    // python-slack-sdk tests/slack_sdk/signature/test_signature_verifier.py).
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let headers = [
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
        ("X-Slack-Request-Timestamp", "1531420618"),
        FORM,
    ];
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    assert_eq!(
        verify_at("slack", "https://x/y", &headers, body, secret, 1_531_420_618),
        Ok(())
    );
    assert_eq!(
        verify_at("slack", "https://x/y", &headers, body, secret, 1_531_420_618 + 301),
        Err(VerifyError::OutOfTolerance(300))
    );
}

/// The Standard Webhooks libraries' values (standard-webhooks/libraries), which
/// svix-webhooks javascript/src/webhook.test.ts uses under Svix's header names. Replicate
/// follows Standard Webhooks (replicate.com/docs/topics/webhooks/verify-webhook); Clerk and
/// Resend send through Svix and verify with its libraries (clerk.com/docs/webhooks/overview,
/// resend.com/docs/webhooks/verify-webhooks-requests). The same request verifies on each.
#[test]
fn standard_webhooks_vector_on_every_connector_that_uses_it() {
    let body = r#"{"test": 2432232314}"#;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let at = 1_614_265_330;
    for (connector, prefix) in [
        ("standard_webhooks", "webhook"),
        ("replicate", "webhook"),
        ("svix", "svix"),
        ("clerk", "svix"),
        ("resend", "svix"),
    ] {
        let names = [
            format!("{prefix}-id"),
            format!("{prefix}-timestamp"),
            format!("{prefix}-signature"),
        ];
        let values = [
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ];
        let headers: Vec<(&str, &str)> = names.iter().map(String::as_str).zip(values).collect();
        let check = |body: &str, now: i64| verify_at(connector, "https://x/y", &headers, body, secret, now);
        assert_eq!(check(body, at), Ok(()), "{connector}");
        assert_eq!(
            check(body, at + 301),
            Err(VerifyError::OutOfTolerance(300)),
            "{connector}"
        );
        assert_eq!(
            check(&body.replace('2', "3"), at),
            Err(VerifyError::Mismatch),
            "{connector}"
        );
    }
}

#[test]
fn sendgrid_sdk_vector_with_several_events() {
    // sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js: two events, CR LF
    // between them and after.
    let body = "[{\"email\":\"invalid@gmail.com\",\"event\":\"processed\",\"send_at\":0,\"sg_event_id\":\"cHJvY2Vzc2VkLTE5OTQyMTEyLXFOd0JMZ1BRUWpXNkRKdktRd1NBYnctMA\",\"sg_message_id\":\"qNwBLgPQQjW6DJvKQwSAbw.filterdrecv-canary-547b64655b-cw6zx-1-6089EA4A-56.0\",\"smtp-id\":\"<qNwBLgPQQjW6DJvKQwSAbw@ismtpd0178p1mdw1.sendgrid.net>\",\"timestamp\":1619651146},\r\n{\"email\":\"invalid@gmail.com\",\"event\":\"bounce\",\"ip\":\"167.89.101.76\",\"reason\":\"552 5.2.2 The email account that you tried to reach is over quota and inactive. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm c17si1130468pgv.34 - gsmtp\",\"sg_event_id\":\"Ym91bmNlLTAtMTk5NDIxMTItcU53QkxnUFFRalc2REp2S1F3U0Fidy0w\",\"sg_message_id\":\"qNwBLgPQQjW6DJvKQwSAbw.filterdrecv-canary-547b64655b-cw6zx-1-6089EA4A-56.0\",\"smtp-id\":\"<qNwBLgPQQjW6DJvKQwSAbw@ismtpd0178p1mdw1.sendgrid.net>\",\"status\":\"5.2.2\",\"timestamp\":1619651147,\"tls\":1,\"type\":\"blocked\"}]\r\n";
    let key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQ4LIFtWztlsF7skFqOncjD1lun4H5w8XOhyOArHW9RcIx/FfEzx6cikC/yPfUvwaX/JScE7Fc9CJD2afQ9Ok3Q==";
    let headers = [
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            "MEYCIQC/I4o6vCgqRYrTljjoVWB/GRWNtxeePlLMHr3x9ETeRQIhAIpV+03nREPTTHWSW0wIOA0EoMPdcNgXa70yCaqDJlu5",
        ),
        ("X-Twilio-Email-Event-Webhook-Timestamp", "1619651159"),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        verify_at("sendgrid", "https://x/y", &headers, body, key, 1_619_651_159),
        Ok(())
    );

    // Split into one event per element, each with its own sg_event_id.
    let catalog = crate::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    let mut h = http::HeaderMap::new();
    h.insert("content-type", http::HeaderValue::from_static("application/json"));
    let events = crate::extract::extract_from(&catalog.get("sendgrid").unwrap().event, &h, body.as_bytes());
    let got: Vec<(&str, &str)> = events.iter().map(|e| (e.id.as_str(), e.event_type.as_str())).collect();
    assert_eq!(
        got,
        [
            (
                "cHJvY2Vzc2VkLTE5OTQyMTEyLXFOd0JMZ1BRUWpXNkRKdktRd1NBYnctMA",
                "processed"
            ),
            ("Ym91bmNlLTAtMTk5NDIxMTItcU53QkxnUFFRalc2REp2S1F3U0Fidy0w", "bounce"),
        ]
    );
}

/// Braintree signs `bt_payload` with HMAC-SHA1 keyed with the SHA-1 of the private key,
/// hex, as `<public key>|<signature>` pairs joined by `&`. The SDK's own vector
/// (braintree_python `tests/unit/test_webhooks.py`, `test_verify_returns_a_correct_challenge_response`:
/// private key `integration_private_key`, challenge `20f9f8ed05f77439fe955c977e4c8a53`
/// → `integration_public_key|d9b899556c966b3f06945ec21311865d35df3ce4`) is the same MAC
/// over other bytes, so it checks the key derivation and the pair layout.
#[test]
fn braintree_sdk_vector_and_sample_notification() {
    const URL: &str = "https://hooks.example.com/v1/webhooks/braintree/acct";
    const KEYS: &str = "integration_public_key|integration_private_key";
    let check = |body: &str, secret: &str| verify_at("braintree", URL, &[FORM], body, secret, 1_700_000_000);
    let sdk = "bt_signature=integration_public_key%7Cd9b899556c966b3f06945ec21311865d35df3ce4&bt_payload=20f9f8ed05f77439fe955c977e4c8a53";
    assert_eq!(check(sdk, KEYS), Ok(()));
    assert_eq!(check(&sdk.replace("20f9", "20f8"), KEYS), Err(VerifyError::Mismatch));

    // A notification built as the SDK's `WebhookTestingGateway.sample_notification` does
    // (its XML, base64 with MIME line breaks, signed with the same keys).
    let sample = "bt_signature=integration_public_key%7C39948d1d675013c16ca1ba90262c8f0c29b9afd7&bt_payload=CiAgICAgICAgICAgIDxub3RpZmljYXRpb24%2BCiAgICAgICAgICAgICAgICA8dGltZXN0YW1wIHR5%0AcGU9ImRhdGV0aW1lIj4yMDI2LTEyLTA3VDEyOjAwOjAwWjwvdGltZXN0YW1wPgogICAgICAgICAg%0AICAgICAgPGtpbmQ%2Bc3Vic2NyaXB0aW9uX3dlbnRfcGFzdF9kdWU8L2tpbmQ%2BCiAgICAgICAgICAg%0AICAgICA8c3ViamVjdD4KICAgICAgICAgICAgPHN1YnNjcmlwdGlvbj4KICAgICAgICAgICAgICAg%0AIDxpZD5zdWJfMTwvaWQ%2BCiAgICAgICAgICAgICAgICA8dHJhbnNhY3Rpb25zIHR5cGU9ImFycmF5%0AIj48L3RyYW5zYWN0aW9ucz4KICAgICAgICAgICAgICAgIDxhZGRfb25zIHR5cGU9ImFycmF5Ij48%0AL2FkZF9vbnM%2BCiAgICAgICAgICAgICAgICA8ZGlzY291bnRzIHR5cGU9ImFycmF5Ij48L2Rpc2Nv%0AdW50cz4KICAgICAgICAgICAgPC9zdWJzY3JpcHRpb24%2BCiAgICAgICAgPC9zdWJqZWN0PgogICAg%0AICAgICAgICA8L25vdGlmaWNhdGlvbj4KICAgICAgICA%3D%0A";
    assert_eq!(check(sample, KEYS), Ok(()), "valid");
    let tampered = sample.replacen("bt_payload=", "bt_payload=YmFk", 1);
    assert_eq!(check(&tampered, KEYS), Err(VerifyError::Mismatch), "tampered");
    assert_eq!(
        check(sample, "integration_public_key|wrong_private_key"),
        Err(VerifyError::Mismatch),
        "wrong private key"
    );
    assert_eq!(
        check(sample, "other_public_key|integration_private_key"),
        Err(VerifyError::Mismatch),
        "a pair for another public key is not ours"
    );
    assert_eq!(
        check(sample, "integration_private_key"),
        Err(VerifyError::Mismatch),
        "a secret without its key id"
    );
    // Several pairs (one per API key), ours not first; and a rotation on our side.
    let sig = sample
        .split('&')
        .find_map(|p| p.strip_prefix("bt_signature="))
        .unwrap()
        .to_string();
    let several = sample.replace(&sig, &format!("other_public_key%7Cdeadbeef%26{sig}"));
    assert_eq!(check(&several, KEYS), Ok(()), "several pairs");
    let rotated = || {
        let c = crate::catalog::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog"))
            .unwrap();
        let spec = c.get("braintree").unwrap().signature.clone();
        let mut h = http::HeaderMap::new();
        h.insert("content-type", http::HeaderValue::from_static(FORM.1));
        let raw = super::RawWebhook {
            method: http::Method::POST,
            url: URL.into(),
            headers: h,
            body: bytes::Bytes::from(sample.to_string()),
        };
        super::verify(&spec, raw, &["integration_public_key|old_private_key", KEYS], 0).map(|_| ())
    };
    assert_eq!(rotated(), Ok(()), "rotated: the second secret matches");
}

/// recurly-client-go `webhook_test.go`: its secrets and body, signed as Recurly signs
/// (`<ms>.<body>`, HMAC-SHA256 hex) at the body's `event_time`, the test's own
/// timestamp being "now"; the header leads with the timestamp, then one signature per
/// active key (docs.recurly.com/recurly-subscriptions/docs/signature-verification).
#[test]
fn recurly_sdk_values_with_a_rotated_key() {
    let body = r#"{"id":"rjxwmwedwqug","object_type":"account","site_id":"qc326l1hl8k9","event_type":"created","event_time":"2022-09-13T21:18:40Z","account_code":"adfas23zzz14123"}"#;
    let (old, new) = (
        "354fab5bd35f5a0d50845ee7e30165244468b13c2c343f104e4e730a59326d9d",
        "ade46dda4474b0ae57dec22d35b9cd526b260d235f7e200c1d93f156000fe396",
    );
    let sig_old = "c847d37e18f2c23fcc97cb0b6704455169b732f7d81d145574d92786730f019b";
    let sig_new = "b93ecd2079300feeb1f7a755e016f40c8823f30c776771499d5019a3c439909a";
    let at = 1_663_103_920;
    let check = |header: &str, body: &str, secret: &str, now: i64| {
        verify_at(
            "recurly",
            "https://x/y",
            &[("recurly-signature", header), ("content-type", "application/json")],
            body,
            secret,
            now,
        )
    };
    let one = format!("1663103920000,{sig_old}");
    assert_eq!(check(&one, body, old, at), Ok(()));
    // During a key rotation the header carries both signatures; either key verifies.
    let both = format!("1663103920000,{sig_old},{sig_new}");
    assert_eq!(check(&both, body, old, at), Ok(()));
    assert_eq!(check(&both, body, new, at), Ok(()));
    assert_eq!(check(&one, body, new, at), Err(VerifyError::Mismatch), "wrong key");
    assert_eq!(
        check(&one, &body.replace("created", "updated"), old, at),
        Err(VerifyError::Mismatch),
        "tampered"
    );
    // The go tests: ten minutes old is past the 5-minute tolerance; a timestamp alone,
    // or one changed by a millisecond, does not verify.
    assert_eq!(
        check(&one, body, old, at + 600),
        Err(VerifyError::OutOfTolerance(300)),
        "stale"
    );
    assert_eq!(check("1663103920000", body, old, at), Err(VerifyError::Malformed));
    assert_eq!(
        check(&format!("1663103920001,{sig_old}"), body, old, at),
        Err(VerifyError::Mismatch)
    );
    // The type is `<object_type>.<event_type>`, the id the body's hash (no notification id).
    let catalog = crate::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    let events = crate::extract::extract_from(
        &catalog.get("recurly").unwrap().event,
        &http::HeaderMap::new(),
        body.as_bytes(),
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "account.created");
    assert_eq!(events[0].id.len(), 64);
    assert_eq!(events[0].unrecognized, None);
}

/// adyen-node-api-library `src/__tests__/hmacValidator.spec.ts`: its key and its two
/// notification items with their expected signatures; the third item, without an
/// `originalReference`, signed as Adyen's validators sign it (the absent field empty).
#[test]
fn adyen_sdk_vectors_one_signature_per_item() {
    const KEY: &str = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";
    let item = |psp_extra: &str, event: &str, sig: &str| {
        format!(
            r#"{{"NotificationRequestItem":{{"pspReference":"pspReference",{psp_extra}"merchantAccountCode":"merchantAccount","merchantReference":"reference","amount":{{"currency":"EUR","value":1000}},"eventCode":"{event}","eventDate":"2019-09-21T11:45:24.637Z","paymentMethod":"VISA","reason":"reason","success":"true","additionalData":{{"hmacSignature":"{sig}"}}}}}}"#
        )
    };
    let report = item(
        r#""originalReference":"originalReference","#,
        "REPORT_AVAILABLE",
        "ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE=",
    );
    let event = item(
        r#""originalReference":"originalReference","#,
        "EVENT",
        "ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc=",
    );
    let no_original = item("", "AUTHORISATION", "lDqFkffmhLcWJfO+0hhmHHaARjpuwRQ17bNC/JgrnmQ=");
    let batch = |items: &[&str]| format!(r#"{{"live":"false","notificationItems":[{}]}}"#, items.join(","));
    let check = |body: &str, key: &str| {
        verify_at(
            "adyen",
            "https://x/y",
            &[("content-type", "application/json")],
            body,
            key,
            1_700_000_000,
        )
    };
    assert_eq!(check(&batch(&[&report]), KEY), Ok(()));
    assert_eq!(check(&batch(&[&report, &event, &no_original]), KEY), Ok(()));
    // Lower-case hex is the same key.
    assert_eq!(check(&batch(&[&event]), &KEY.to_lowercase()), Ok(()));
    let wrong = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
    assert_eq!(
        check(&batch(&[&report]), wrong),
        Err(VerifyError::Mismatch),
        "wrong key"
    );
    // A signed field changed in one item refuses the whole batch.
    let tampered = report.replace(r#""value":1000"#, r#""value":1"#);
    assert_eq!(
        check(&batch(&[&event, &tampered]), KEY),
        Err(VerifyError::Mismatch),
        "tampered"
    );
    // Another item's signature does not carry over.
    let swapped = event.replace(
        "ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc=",
        "ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE=",
    );
    assert_eq!(check(&batch(&[&swapped]), KEY), Err(VerifyError::Mismatch));
    // An item without a signature, an empty batch, or no batch: nothing to verify.
    let unsigned = report.replace(
        r#""hmacSignature":"ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE=""#,
        r#""x":"y""#,
    );
    assert_eq!(check(&batch(&[&report, &unsigned]), KEY), Err(VerifyError::Malformed));
    assert_eq!(check(&batch(&[]), KEY), Err(VerifyError::Malformed));
    assert_eq!(check(r#"{"live":"false"}"#, KEY), Err(VerifyError::Malformed));

    // A rotation: both keys registered, either verifies each item.
    let catalog = crate::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    let spec = &catalog.get("adyen").unwrap().signature;
    let raw = |body: String| super::RawWebhook {
        method: http::Method::POST,
        url: "https://x/y".into(),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::from(body),
    };
    assert!(super::verify(spec, raw(batch(&[&report, &event])), &[wrong, KEY], 1_700_000_000).is_ok());
    assert_eq!(
        super::verify(spec, raw(batch(&[&report])), &[], 1_700_000_000).map(|_| ()),
        Err(VerifyError::NoSecret)
    );

    // Each item is its own event, named by pspReference and eventCode.
    let mut h = http::HeaderMap::new();
    h.insert("content-type", http::HeaderValue::from_static("application/json"));
    let body = batch(&[&report, &event]);
    let events = crate::extract::extract_from(&catalog.get("adyen").unwrap().event, &h, body.as_bytes());
    let got: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .map(|e| (e.id.as_str(), e.event_type.as_str(), e.account.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "pspReference:REPORT_AVAILABLE",
                "REPORT_AVAILABLE",
                Some("merchantAccount")
            ),
            ("pspReference:EVENT", "EVENT", Some("merchantAccount")),
        ]
    );
}
