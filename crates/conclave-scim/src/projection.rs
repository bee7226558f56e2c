//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): which
//! attributes of a resource a response carries. `id`, `schemas` and `meta`
//! are always returned; names may be URN-prefixed or name a sub-attribute.

use crate::path::{key_of, AttrPath};
use crate::ScimError;
use serde_json::{Map, Value};

const ALWAYS: [&str; 3] = ["id", "schemas", "meta"];

/// The attribute paths of a comma-separated list.
pub fn parse_list(text: &str) -> Result<Vec<AttrPath>, ScimError> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(AttrPath::parse).collect()
}

/// Keeps only what `attributes` names (when it names anything), then
/// drops what `excluded` names.
pub fn project(resource: &mut Value, attributes: &[AttrPath], excluded: &[AttrPath]) {
    let Value::Object(object) = resource else { return };
    if !attributes.is_empty() {
        let mut kept = Map::new();
        for key in ALWAYS {
            if let Some(k) = key_of(object, key) {
                kept.insert(k.clone(), object[&k].clone());
            }
        }
        for path in attributes.iter().filter(|p| p.urn.is_none()) {
            let Some(key) = key_of(object, &path.name) else { continue };
            let value = object[&key].clone();
            match &path.sub {
                None => {
                    kept.insert(key, value);
                }
                Some(sub) => {
                    let narrowed = narrow(&value, sub);
                    match kept.get_mut(&key) {
                        Some(existing) => merge(existing, narrowed),
                        None => {
                            kept.insert(key, narrowed);
                        }
                    }
                }
            }
        }
        *object = kept;
    }
    for path in excluded.iter().filter(|p| p.urn.is_none()) {
        if ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(&path.name)) {
            continue;
        }
        let Some(key) = key_of(object, &path.name) else { continue };
        match &path.sub {
            None => {
                object.remove(&key);
            }
            Some(sub) => strip(object.get_mut(&key).expect("the key is there"), sub),
        }
    }
}

/// A complex value (or each element of a multi-valued one) with only `sub`.
fn narrow(value: &Value, sub: &str) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|i| narrow(i, sub)).collect()),
        Value::Object(o) => {
            let mut only = Map::new();
            if let Some(k) = key_of(o, sub) {
                only.insert(k.clone(), o[&k].clone());
            }
            Value::Object(only)
        }
        other => other.clone(),
    }
}

fn merge(into: &mut Value, more: Value) {
    match (into, more) {
        (Value::Object(a), Value::Object(b)) => a.extend(b),
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter_mut().zip(b) {
                merge(x, y);
            }
        }
        _ => {}
    }
}

fn strip(value: &mut Value, sub: &str) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|i| strip(i, sub)),
        Value::Object(o) => {
            if let Some(k) = key_of(o, sub) {
                o.remove(&k);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({"schemas": ["s"], "id": "u1", "userName": "ada", "displayName": "Ada",
               "name": {"givenName": "Ada", "familyName": "Lovelace"},
               "emails": [{"value": "a@x.test", "type": "work"}], "meta": {"resourceType": "User"}})
    }

    #[test]
    fn attributes_keep_only_what_is_asked_and_what_is_always_returned() {
        let mut u = user();
        project(&mut u, &parse_list("userName, name.familyName,emails.value").unwrap(), &[]);
        assert_eq!(
            u,
            json!({"schemas": ["s"], "id": "u1", "meta": {"resourceType": "User"}, "userName": "ada",
                   "name": {"familyName": "Lovelace"}, "emails": [{"value": "a@x.test"}]})
        );
    }

    #[test]
    fn excluded_attributes_are_dropped_but_never_the_id() {
        let mut u = user();
        project(&mut u, &[], &parse_list("displayName,name.givenName,id,emails.type").unwrap());
        assert!(u.get("displayName").is_none());
        assert_eq!(u["name"], json!({"familyName": "Lovelace"}));
        assert_eq!(u["emails"], json!([{"value": "a@x.test"}]));
        assert_eq!(u["id"], json!("u1"));
        assert!(parse_list("ok,no pe").is_err());
    }
}
