//! Property tests of endpoint content filters ([`switchyard_dispatcher::filter`]): any
//! text, and JSONata-shaped expressions built from paths, literals, operators and
//! functions, over any event. A filter that does not compile is reported as such; the
//! engine never panics on compiling or evaluating one; and every verdict comes within
//! the filter's deadline (plus the wait allowed for a busy engine), whatever the filter.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard_connectors::mapping::{Limits, Mapping, MappingError};
use switchyard_dispatcher::filter::{FilterError, Filters, Verdict, BUSY_WAIT};
use switchyard_tests::proptest_cases;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});
static FILTERS: LazyLock<Filters> = LazyLock::new(Filters::default);

/// A JSONata term: a path into the event, a literal, or a small function call.
fn term() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "data.amount",
            "connector",
            "type",
            "data.items[0]",
            "data.items[-1].n",
            "data.*",
            "**.n",
            "$",
            "$$",
            "data.items[n > 1]",
            "data.items#$i",
            "data.items^(n)",
            "data.missing.deeper",
        ])
        .prop_map(String::from),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::sample::select(vec![
            "true",
            "false",
            "null",
            "[]",
            "{}",
            "[1..100]",
            "[1..10000]",
            "\"\""
        ])
        .prop_map(String::from),
        (
            prop::sample::select(vec![
                "$count",
                "$sum",
                "$string",
                "$number",
                "$boolean",
                "$not",
                "$exists",
                "$keys",
                "$length",
                "$uppercase",
                "$split",
                "$contains",
                "$substring",
                "$match",
                "$replace",
                "$join",
                "$sort",
                "$reverse",
                "$distinct",
                "$lookup",
                "$type",
                "$abs",
                "$floor",
                "$power",
                "$sqrt",
                "$pad",
                "$formatNumber",
                "$fromMillis",
                "$toMillis",
                "$base64decode",
                "$decodeUrl",
                "$eval",
            ]),
            prop::sample::select(vec![
                "data",
                "data.amount",
                "connector",
                "\"a,b\"",
                "\",\"",
                "/[a-z]+/",
                "2",
                "-1",
                "$"
            ]),
        )
            .prop_map(|(f, a)| format!("{f}({a})")),
    ]
}

/// Terms joined by operators, parenthesised, negated, conditioned, any depth to three.
fn expression() -> impl Strategy<Value = String> {
    term().prop_recursive(3, 24, 3, |inner| {
        let op = prop::sample::select(vec![
            "=", "!=", "<", "<=", ">", ">=", "and", "or", "in", "&", "+", "-", "*", "/", "%", "..", ".",
        ]);
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("$not({a})")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| format!("{c} ? {a} : {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("$filter({a}, function($v) {{ {b} }})")),
        ]
    })
}

/// Any text, or an expression with a character dropped or added somewhere.
fn filter_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => expression(),
        1 => any::<String>(),
        1 => (expression(), any::<prop::sample::Index>(), any::<char>()).prop_map(|(e, i, c)| {
            let mut chars: Vec<char> = e.chars().collect();
            let at = i.index(chars.len() + 1);
            if at < chars.len() && c.is_ascii_punctuation() {
                chars.remove(at);
            } else {
                chars.insert(at, c);
            }
            chars.into_iter().collect()
        }),
    ]
}

/// Any JSON, the unified event's usual keys more often than not.
fn event() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    let any_json = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec!["amount", "items", "n", "connector"]).prop_map(String::from),
                    any::<String>()
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    (any_json.clone(), any_json).prop_map(|(data, other)| {
        json!({"id": "evt_1", "type": "payments.charge.succeeded", "connector": "stripe", "data": data, "other": other})
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(96), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_filter_over_any_event_is_judged_in_bounded_time(source in filter_text(), event in event()) {
        let compiled = Mapping::compile(&source);
        prop_assert!(!matches!(compiled, Err(MappingError::Panicked(_))), "compiling {source:?}: {compiled:?}");
        if let Ok(m) = &compiled {
            let r = m.evaluate(&event, Limits::default());
            prop_assert!(!matches!(r, Err(MappingError::Panicked(_))), "evaluating {source:?} over {event}: {r:?}");
        }
        let started = Instant::now();
        let verdict = RUNTIME.block_on(FILTERS.check("t1", &source, Arc::new(event.clone())));
        let bound = Limits::default().deadline() + BUSY_WAIT + Duration::from_secs(1);
        prop_assert!(started.elapsed() < bound, "{source:?} took {:?}", started.elapsed());
        match (&compiled, &verdict) {
            (Err(_), Verdict::Error(why)) => prop_assert!(matches!(why, FilterError::Compile(_)), "{why}"),
            (Err(e), v) => prop_assert!(false, "{source:?} does not compile ({e}) but was judged {v:?}"),
            (Ok(_), Verdict::Error(why)) => {
                prop_assert!(
                    !matches!(why, FilterError::Compile(_) | FilterError::Panicked | FilterError::Failed(MappingError::Panicked(_))),
                    "{source:?}: {why}"
                );
            }
            (Ok(_), _) => {}
        }
    }
}
