//! The account each event of a verified request belongs to. An account in the URL owns
//! them all; otherwise each event's routing key (the connector's `event.account`) is
//! looked up among the accounts' `external_id`s. An event whose key is missing or names
//! no registered account is kept all the same, without an account: the normalizer
//! dead-letters it (`unknown_account`) where an operator sees and replays it.

use switchyard_connectors::extract::ExtractedEvent;
use switchyard_connectors::Connector;
use switchyard_registry::Account;

use crate::commit::{Owner, Routed};
use crate::reject::Rejection;
use crate::State;

pub async fn route(
    state: &State,
    connector: &Connector,
    account: Option<&Account>,
    extracted: Vec<ExtractedEvent>,
) -> Result<Vec<Routed>, Rejection> {
    let mut events = Vec::with_capacity(extracted.len());
    for e in extracted {
        if let Some(why) = e.unrecognized {
            state
                .metrics
                .unrecognized
                .with_label_values(&[&connector.name, why.code()])
                .inc();
        }
        let owner = match account {
            Some(a) => Some(ids(a)),
            None => match e.account.as_deref() {
                None => {
                    state
                        .metrics
                        .unrecognized
                        .with_label_values(&[&connector.name, "missing_account_key"])
                        .inc();
                    None
                }
                // An account not registered (yet) does not lose the event.
                Some(external) => match state.registry.account_by_external(&connector.name, external).await {
                    Ok(found) => found.as_deref().map(ids),
                    Err(err) => {
                        tracing::warn!(error = %err, "Routing-key lookup failed and nothing is cached; answering 503.");
                        return Err(Rejection::Unavailable("registry_unavailable"));
                    }
                },
            },
        };
        events.push(Routed { event: e, owner });
    }
    Ok(events)
}

fn ids(a: &Account) -> Owner {
    Owner {
        account_id: a.id.clone(),
        tenant_id: a.tenant_id.clone(),
    }
}
