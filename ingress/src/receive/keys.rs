//! Which keys may verify a request: the account's own when it has any, else the
//! connector-level ones from configuration (an app's client secret signs for every
//! account of the app). Secrets for HMAC schemes, public keys for Ed25519 and ECDSA;
//! an expired secret verifies nothing.

use switchyard_connectors::signature::Fallbacks;
use switchyard_connectors::Connector;
use switchyard_core::secret::active_secrets;
use switchyard_registry::Account;

use crate::ConnectorKeys;

/// The keys to try, in order, at `now` (Unix seconds).
pub fn verifying<'a>(
    connector: &Connector,
    account: Option<&'a Account>,
    level: Option<&'a ConnectorKeys>,
    now: i64,
) -> Vec<&'a str> {
    if connector.signature.uses_public_keys() {
        match account {
            Some(a) if !a.public_keys.is_empty() => a.public_keys.iter().map(String::as_str).collect(),
            _ => level
                .map(|l| l.public_keys.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        }
    } else {
        match account {
            Some(a) if !a.signing_secrets.is_empty() => active_secrets(&a.signing_secrets, now),
            _ => level.map(|l| active_secrets(&l.secrets, now)).unwrap_or_default(),
        }
    }
}

/// The fallback schemes a request may be verified by. Older schemes that sign no
/// timestamp would let a captured request be replayed by dropping the primary header
/// (a downgrade): they are tried only where the operator opted in.
pub fn fallbacks(level: Option<&ConnectorKeys>) -> Fallbacks {
    if level.is_some_and(|l| l.legacy_signatures) {
        Fallbacks::All
    } else {
        Fallbacks::ReplaySafe
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::secret::{Secret, SigningSecret};

    use super::*;
    use crate::receive::test_catalog;

    fn account(secrets: Vec<SigningSecret>, public_keys: Vec<&str>) -> Account {
        Account {
            id: "acct_1".into(),
            tenant_id: "t1".into(),
            connector: "stripe".into(),
            external_id: None,
            signing_secrets: secrets,
            public_keys: public_keys.into_iter().map(String::from).collect(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn level(secrets: &[&str], public_keys: &[&str], legacy: bool) -> ConnectorKeys {
        ConnectorKeys {
            secrets: secrets.iter().map(|s| SigningSecret::new(*s)).collect(),
            public_keys: public_keys.iter().map(|s| s.to_string()).collect(),
            legacy_signatures: legacy,
        }
    }

    #[test]
    fn the_accounts_secrets_come_first_and_expired_ones_are_left_out() {
        let catalog = test_catalog();
        let stripe = catalog.get("stripe").unwrap();
        let expired = SigningSecret {
            value: Secret::new("old"),
            expires_at: Some(100),
        };
        let a = account(vec![SigningSecret::new("own"), expired], vec![]);
        let l = level(&["app"], &[], false);
        assert_eq!(verifying(stripe, Some(&a), Some(&l), 99), vec!["own", "old"]);
        assert_eq!(verifying(stripe, Some(&a), Some(&l), 100), vec!["own"]);
        // An account without secrets of its own is verified by the connector's.
        let bare = account(vec![], vec![]);
        assert_eq!(verifying(stripe, Some(&bare), Some(&l), 0), vec!["app"]);
        assert_eq!(verifying(stripe, None, Some(&l), 0), vec!["app"]);
        assert!(verifying(stripe, None, None, 0).is_empty());
    }

    #[test]
    fn asymmetric_schemes_take_public_keys_never_secrets() {
        let catalog = test_catalog();
        let discord = catalog.get("discord").unwrap();
        assert!(discord.signature.uses_public_keys());
        let a = account(vec![SigningSecret::new("secret")], vec!["pk-own"]);
        let l = level(&["app-secret"], &["pk-app"], false);
        assert_eq!(verifying(discord, Some(&a), Some(&l), 0), vec!["pk-own"]);
        assert_eq!(verifying(discord, None, Some(&l), 0), vec!["pk-app"]);
    }

    #[test]
    fn fallbacks_without_a_signed_timestamp_need_the_operators_opt_in() {
        assert!(matches!(fallbacks(None), Fallbacks::ReplaySafe));
        assert!(matches!(
            fallbacks(Some(&level(&[], &[], false))),
            Fallbacks::ReplaySafe
        ));
        assert!(matches!(fallbacks(Some(&level(&[], &[], true))), Fallbacks::All));
    }
}
