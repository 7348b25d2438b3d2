//! Patroni's dynamic configuration as flat dotted keys, and the keys on which separately
//! configured scopes differ (`citusctl show-config --diff`). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

/// `{"postgresql": {"parameters": {"max_connections": 100}}}` becomes
/// `postgresql.parameters.max_connections` = `100`.
///
/// Objects are walked; anything else (a scalar, a list) is one value. Strings are shown
/// without quotes, so `"100"` and `100` are the same value, as they are to Patroni, which
/// writes either into postgresql.conf. An empty object is the value `{}`.
pub fn flatten(config: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk("", config, &mut out);
    out
}

fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, child, out);
            }
        }
        _ if prefix.is_empty() => {}
        _ => {
            out.insert(prefix.to_owned(), value_text(v));
        }
    }
}

/// One value as a person reads it: strings without quotes, the rest as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One key on which the compared scopes do not all agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDiff {
    pub key: String,
    /// One per compared scope, in the order given; `None`: the key is absent there.
    pub values: Vec<ScopeValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeValue {
    pub scope: String,
    pub value: Option<String>,
}

/// The keys whose value (or presence) is not the same in every scope, sorted by key.
/// Fewer than two scopes cannot differ.
pub fn diff(scopes: &[(&str, &BTreeMap<String, String>)]) -> Vec<KeyDiff> {
    if scopes.len() < 2 {
        return vec![];
    }
    let keys: BTreeSet<&String> = scopes.iter().flat_map(|(_, m)| m.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let values: Vec<Option<&String>> = scopes.iter().map(|(_, m)| m.get(key)).collect();
            if values.iter().all(|v| *v == values[0]) {
                return None;
            }
            Some(KeyDiff {
                key: key.clone(),
                values: scopes
                    .iter()
                    .zip(values)
                    .map(|((scope, _), v)| ScopeValue {
                        scope: (*scope).to_owned(),
                        value: v.cloned(),
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_walks_objects_and_keeps_lists_and_scalars_whole() {
        let f = flatten(&json!({
            "ttl": 20,
            "postgresql": {
                "use_slots": true,
                "parameters": {"max_connections": 100, "wal_level": "replica"},
                "pg_hba": ["local all all trust", "host all all 0.0.0.0/0 md5"],
            },
            "slots": {},
            "standby_cluster": null,
        }));
        let want: Vec<(&str, &str)> = vec![
            ("postgresql.parameters.max_connections", "100"),
            ("postgresql.parameters.wal_level", "replica"),
            (
                "postgresql.pg_hba",
                r#"["local all all trust","host all all 0.0.0.0/0 md5"]"#,
            ),
            ("postgresql.use_slots", "true"),
            ("slots", "{}"),
            ("standby_cluster", "null"),
            ("ttl", "20"),
        ];
        let got: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn flatten_keeps_dotted_parameter_names_and_ignores_a_bare_scalar() {
        let f =
            flatten(&json!({"postgresql": {"parameters": {"citus.max_shared_pool_size": 200}}}));
        assert_eq!(
            f.get("postgresql.parameters.citus.max_shared_pool_size")
                .map(String::as_str),
            Some("200")
        );
        assert!(flatten(&json!(42)).is_empty());
        assert!(flatten(&json!({})).is_empty());
    }

    fn flat(v: Value) -> BTreeMap<String, String> {
        flatten(&v)
    }

    #[test]
    fn diff_names_only_the_keys_that_differ_with_every_scopes_value() {
        let wk1 = flat(json!({"ttl": 20, "postgresql": {"parameters": {"max_connections": 100}}}));
        let wk2 = flat(json!({"ttl": 20, "postgresql": {"parameters": {"max_connections": 200}}}));
        let wk3 = flat(
            json!({"ttl": 20, "postgresql": {"parameters": {"max_connections": "100", "work_mem": "8MB"}}}),
        );
        let d = diff(&[("wk1", &wk1), ("wk2", &wk2), ("wk3", &wk3)]);
        let v = |s: &str, x: Option<&str>| ScopeValue {
            scope: s.into(),
            value: x.map(Into::into),
        };
        assert_eq!(
            d,
            vec![
                KeyDiff {
                    key: "postgresql.parameters.max_connections".into(),
                    values: vec![
                        v("wk1", Some("100")),
                        v("wk2", Some("200")),
                        v("wk3", Some("100"))
                    ],
                },
                KeyDiff {
                    key: "postgresql.parameters.work_mem".into(),
                    values: vec![v("wk1", None), v("wk2", None), v("wk3", Some("8MB"))],
                },
            ]
        );
    }

    #[test]
    fn equal_scopes_a_string_number_and_a_single_scope_have_no_differences() {
        let a = flat(json!({"postgresql": {"parameters": {"max_connections": 100}}}));
        let b = flat(json!({"postgresql": {"parameters": {"max_connections": "100"}}}));
        assert!(diff(&[("wk1", &a), ("wk2", &b)]).is_empty());
        assert!(diff(&[("wk1", &a)]).is_empty());
        assert!(diff(&[]).is_empty());
    }

    #[test]
    fn a_key_absent_everywhere_but_one_scope_differs() {
        let a = flat(json!({"ttl": 20}));
        let b = flat(json!({}));
        let d = diff(&[("wk1", &a), ("wk2", &b)]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].values[1].value, None);
    }
}
