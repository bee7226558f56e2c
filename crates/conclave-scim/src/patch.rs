//! PATCH (RFC 7644 §3.5.2) applied to a resource's JSON. The server turns
//! the result back into its own record and checks it there, so this module
//! only has to place values where the operations say, the way Okta and
//! Entra ID write them: operation names in any case, values with or
//! without a path, dotted or URN-prefixed keys inside a value, filters that
//! pick elements of a multi-valued attribute, and a filtered element that
//! does not exist yet created from its `eq` filter.

use crate::path::{key_of, PatchPath};
use crate::ScimError;
use serde_json::{Map, Value};

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Operations in one request (a group's members may come a thousand at a time).
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub kind: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Reads a `PatchOp` request body.
pub fn parse(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let schemas = crate::path::get(body, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_SCHEMA)))) {
        return Err(ScimError::InvalidSyntax(format!("a PATCH request names the schema {PATCH_SCHEMA}")));
    }
    let operations = crate::path::get(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::InvalidSyntax("a PATCH request has an array of Operations".into()))?;
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::TooMany(format!("a PATCH request may have {MAX_OPERATIONS} operations at most")));
    }
    operations.iter().map(parse_op).collect()
}

fn parse_op(op: &Value) -> Result<PatchOp, ScimError> {
    let kind = match crate::path::get(op, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("add") => OpKind::Add,
        Some("replace") => OpKind::Replace,
        Some("remove") => OpKind::Remove,
        Some(other) => return Err(ScimError::InvalidSyntax(format!("'{other}' is not an operation"))),
        None => return Err(ScimError::InvalidSyntax("each operation has an op".into())),
    };
    let path = match crate::path::get(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(PatchPath::parse(p)?),
        Some(_) => return Err(ScimError::InvalidPath("a path is a string".into())),
    };
    let value = crate::path::get(op, "value").cloned();
    match (kind, &path, &value) {
        (OpKind::Remove, None, _) => Err(ScimError::NoTarget("remove needs a path".into())),
        (OpKind::Add | OpKind::Replace, _, None) => Err(ScimError::InvalidValue("add and replace need a value".into())),
        (OpKind::Add | OpKind::Replace, None, Some(v)) if !v.is_object() => {
            Err(ScimError::InvalidValue("without a path, the value is an object of attributes".into()))
        }
        _ => Ok(PatchOp { kind, path, value }),
    }
}

/// Applies `ops` in order to `resource`.
pub fn apply(resource: &mut Value, ops: &[PatchOp]) -> Result<(), ScimError> {
    for op in ops {
        match (&op.path, &op.value) {
            (Some(path), value) => apply_at(resource, path, op.kind, value.clone())?,
            (None, Some(Value::Object(attributes))) => {
                for (key, value) in attributes {
                    apply_keyed(resource, key, op.kind, value)?;
                }
            }
            (None, _) => return Err(ScimError::InvalidValue("without a path, the value is an object".into())),
        }
    }
    Ok(())
}

/// One attribute of a path-less operation's value. Its key may itself be a
/// path (`name.givenName`, as Entra ID sends), or an extension schema whose
/// value holds that extension's attributes.
fn apply_keyed(resource: &mut Value, key: &str, kind: OpKind, value: &Value) -> Result<(), ScimError> {
    let is_schema = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && key.len() > 4
        && key.rsplit(':').next().is_some_and(|last| last.starts_with(|c: char| c.is_ascii_uppercase()));
    if is_schema {
        let Value::Object(attributes) = value else {
            return Err(ScimError::InvalidValue(format!("'{key}' holds an object of attributes")));
        };
        for (name, value) in attributes {
            apply_keyed(resource, &format!("{key}:{name}"), kind, value)?;
        }
        return Ok(());
    }
    apply_at(resource, &PatchPath::parse(key)?, kind, Some(value.clone()))
}

fn apply_at(resource: &mut Value, path: &PatchPath, kind: OpKind, value: Option<Value>) -> Result<(), ScimError> {
    let container = path.attr.container_mut(resource)?;
    let key = key_of(container, &path.attr.name).unwrap_or_else(|| path.attr.name.clone());
    match &path.filter {
        None => apply_plain(container, key, path.attr.sub.as_deref(), kind, value),
        Some(filter) => {
            let current = container.entry(key.clone()).or_insert(Value::Array(Vec::new()));
            if current.is_null() {
                *current = Value::Array(Vec::new());
            }
            let Value::Array(elements) = current else {
                return Err(ScimError::InvalidPath(format!("'{key}' is not multi-valued")));
            };
            let sub = path.sub.as_deref();
            if kind == OpKind::Remove {
                match sub {
                    None => elements.retain(|e| !filter.matches(e)),
                    Some(sub) => {
                        for element in elements.iter_mut().filter(|e| filter.matches(e)) {
                            if let Some(object) = element.as_object_mut() {
                                if let Some(k) = key_of(object, sub) {
                                    object.remove(&k);
                                }
                            }
                        }
                    }
                }
                return Ok(());
            }
            let value = value.expect("add and replace carry a value");
            let mut matched = false;
            for element in elements.iter_mut().filter(|e| filter.matches(e)) {
                matched = true;
                match sub {
                    None => merge_or_set(element, value.clone()),
                    Some(sub) => set_member(element, sub, value.clone())?,
                }
            }
            if !matched {
                // `emails[type eq "work"].value` when there is no work email
                // yet: Entra ID expects one to be made.
                let (attr, wanted) = filter.simple_equality().ok_or_else(|| {
                    ScimError::NoTarget(format!("no element of '{key}' matches the operation's filter"))
                })?;
                let mut element = Value::Object(Map::new());
                set_member(&mut element, &attr.name, Value::String(wanted.to_owned()))?;
                match sub {
                    None => merge_or_set(&mut element, value),
                    Some(sub) => set_member(&mut element, sub, value)?,
                }
                elements.push(element);
            }
            Ok(())
        }
    }
}

fn apply_plain(
    container: &mut Map<String, Value>,
    key: String,
    sub: Option<&str>,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let Some(sub) = sub else {
        match kind {
            OpKind::Remove => {
                container.remove(&key);
            }
            OpKind::Add => {
                let value = value.expect("add carries a value");
                match (container.get_mut(&key), value) {
                    (Some(Value::Array(existing)), Value::Array(more)) => {
                        // A group's thousands of members added at once: each
                        // judged against a set, not the whole list.
                        let mut present: std::collections::HashSet<String> =
                            existing.iter().map(Value::to_string).collect();
                        for item in more {
                            if present.insert(item.to_string()) {
                                existing.push(item);
                            }
                        }
                    }
                    (Some(Value::Array(existing)), item) => {
                        if !existing.contains(&item) {
                            existing.push(item);
                        }
                    }
                    (Some(existing @ Value::Object(_)), value @ Value::Object(_)) => merge_or_set(existing, value),
                    (_, value) => {
                        container.insert(key, value);
                    }
                }
            }
            OpKind::Replace => {
                let value = value.expect("replace carries a value");
                match container.get_mut(&key) {
                    Some(existing @ Value::Object(_)) if value.is_object() => merge_or_set(existing, value),
                    _ => {
                        container.insert(key, value);
                    }
                }
            }
        }
        return Ok(());
    };
    let parent = container.entry(key.clone()).or_insert(Value::Null);
    match (kind, parent) {
        (OpKind::Remove, Value::Object(object)) => {
            if let Some(k) = key_of(object, sub) {
                object.remove(&k);
            }
            Ok(())
        }
        (OpKind::Remove, Value::Array(elements)) => {
            for element in elements.iter_mut() {
                if let Some(object) = element.as_object_mut() {
                    if let Some(k) = key_of(object, sub) {
                        object.remove(&k);
                    }
                }
            }
            Ok(())
        }
        (OpKind::Remove, _) => Ok(()),
        (_, Value::Array(elements)) => {
            let value = value.expect("add and replace carry a value");
            for element in elements.iter_mut() {
                set_member(element, sub, value.clone())?;
            }
            Ok(())
        }
        (_, parent) => set_member(parent, sub, value.expect("add and replace carry a value")),
    }
}

/// Objects merge (sub-attributes not given stay); anything else is replaced.
fn merge_or_set(target: &mut Value, value: Value) {
    match (target, value) {
        (Value::Object(existing), Value::Object(more)) => {
            for (k, v) in more {
                let key = key_of(existing, &k).unwrap_or(k);
                existing.insert(key, v);
            }
        }
        (target, value) => *target = value,
    }
}

fn set_member(target: &mut Value, name: &str, value: Value) -> Result<(), ScimError> {
    if target.is_null() {
        *target = Value::Object(Map::new());
    }
    let object = target
        .as_object_mut()
        .ok_or_else(|| ScimError::InvalidPath(format!("'{name}' is set within something that is not an object")))?;
    let key = key_of(object, name).unwrap_or_else(|| name.to_owned());
    object.insert(key, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(mut resource: Value, body: Value) -> Result<Value, ScimError> {
        let ops = parse(&body)?;
        apply(&mut resource, &ops)?;
        Ok(resource)
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
    }

    fn user() -> Value {
        json!({
            "userName": "ada@example.org",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.org", "type": "work", "primary": true}],
            "active": true
        })
    }

    #[test]
    fn okta_deactivates_and_renames_with_path_less_replaces() {
        let out = patched(user(), body(json!([{"op": "replace", "value": {"active": false}}]))).unwrap();
        assert_eq!(out["active"], json!(false));
        let out = patched(user(), body(json!([{"op": "replace", "value": {"name": {"familyName": "King"}}}]))).unwrap();
        assert_eq!(out["name"], json!({"givenName": "Ada", "familyName": "King"}), "sub-attributes not given stay");
    }

    #[test]
    fn entra_id_sends_capitalised_ops_paths_and_strings_for_booleans() {
        let out = patched(
            user(),
            body(json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "name.givenName", "value": "Augusta"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "augusta@example.org"},
                {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "ada@home.test"},
                {"op": "Add", "value": {"displayName": "Augusta Ada", "name.familyName": "King"}},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Engines"},
            ])),
        )
        .unwrap();
        assert_eq!(out["active"], json!("False"), "the server reads it as a boolean");
        assert_eq!(out["name"], json!({"givenName": "Augusta", "familyName": "King"}));
        assert_eq!(out["displayName"], json!("Augusta Ada"));
        assert_eq!(out["emails"][0]["value"], json!("augusta@example.org"));
        assert_eq!(out["emails"][0]["primary"], json!(true), "other sub-attributes stay");
        assert_eq!(out["emails"][1], json!({"type": "home", "value": "ada@home.test"}));
        assert_eq!(out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"], json!("Engines"));
    }

    #[test]
    fn group_members_are_added_and_removed_by_filter() {
        let group = json!({"displayName": "Engineering", "members": [{"value": "u1"}]});
        let out = patched(
            group,
            body(json!([
                {"op": "add", "path": "members", "value": [{"value": "u2"}, {"value": "u1"}, {"value": "u3"}]},
                {"op": "remove", "path": "members[value eq \"u1\"]"},
                {"op": "remove", "path": "members[value eq \"nobody\"]"},
            ])),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u2"}, {"value": "u3"}]));
        let out = patched(out, body(json!([{"op": "replace", "path": "members", "value": []}]))).unwrap();
        assert_eq!(out["members"], json!([]));
        let out = patched(
            json!({"displayName": "Engineering"}),
            body(json!([{"op": "replace", "value": {"id": "g1", "displayName": "Eng"}}])),
        )
        .unwrap();
        assert_eq!(out["displayName"], json!("Eng"));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (request, says) in [
            (json!({"Operations": []}), "schema"),
            (json!({"schemas": [PATCH_SCHEMA]}), "Operations"),
            (body(json!([{"op": "move", "path": "x"}])), "not an operation"),
            (body(json!([{"op": "remove"}])), "needs a path"),
            (body(json!([{"op": "add", "path": "x"}])), "need a value"),
            (body(json!([{"op": "add", "value": "x"}])), "object of attributes"),
            (body(json!([{"op": "add", "path": "emails[", "value": "x"}])), "does not close"),
            (body(json!([{"op": "replace", "path": "emails[type co \"zzz\"].value", "value": "x"}])), "matches"),
            (body(json!([{"op": "replace", "path": "userName[type eq \"w\"]", "value": "x"}])), "multi-valued"),
        ] {
            let err = patched(user(), request.clone()).expect_err(&request.to_string()).to_string();
            assert!(err.contains(says), "{request}: {err}");
        }
        let many = body(Value::Array(vec![json!({"op": "remove", "path": "title"}); MAX_OPERATIONS + 1]));
        assert!(matches!(patched(user(), many), Err(ScimError::TooMany(_))));
    }
}
