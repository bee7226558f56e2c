//! Attribute paths (RFC 7644 §3.10): `userName`, `name.givenName`, an
//! extension's `urn:…:enterprise:2.0:User:department`, and PATCH's
//! `emails[type eq "work"].value`. Names are case-insensitive.

use crate::filter::Filter;
use crate::ScimError;
use serde_json::{Map, Value};

/// The schemas whose attributes sit at the top of a resource.
const CORE_SCHEMAS: [&str; 2] =
    ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:core:2.0:Group"];

/// Attributes compared exactly (RFC 7643: `caseExact: true`).
const CASE_EXACT: [&str; 2] = ["id", "externalId"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// An extension schema the attribute belongs to (core schemas: `None`).
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        Some('$') => name == "$ref",
        _ => false,
    }
}

impl AttrPath {
    pub fn parse(text: &str) -> Result<Self, ScimError> {
        let bad = || ScimError::InvalidPath(format!("'{text}' is not an attribute"));
        let (urn, rest) = if text.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) && text.len() > 4 {
            let colon = text.rfind(':').ok_or_else(bad)?;
            let urn = &text[..colon];
            let core = CORE_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(urn));
            ((!core).then(|| urn.to_owned()), &text[colon + 1..])
        } else {
            (None, text)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        if !valid_name(name) || sub.is_some_and(|s| !valid_name(s)) {
            return Err(bad());
        }
        Ok(Self { urn, name: name.to_owned(), sub: sub.map(str::to_owned) })
    }

    /// The path of a sub-attribute within an element (`value` of `emails`).
    pub fn simple(name: &str) -> Self {
        Self { urn: None, name: name.to_owned(), sub: None }
    }

    pub fn is_case_exact(&self) -> bool {
        self.sub.is_none() && CASE_EXACT.iter().any(|n| n.eq_ignore_ascii_case(&self.name))
    }

    /// The object the attribute lives in: the resource, or its extension's.
    fn container<'a>(&self, resource: &'a Value) -> Option<&'a Value> {
        match &self.urn {
            None => Some(resource),
            Some(urn) => get(resource, urn),
        }
    }

    /// Every value at this path, multi-valued attributes flattened.
    pub fn values<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        let Some(top) = self.container(resource).and_then(|c| get(c, &self.name)) else { return Vec::new() };
        let elements: Vec<&Value> = match top {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        match &self.sub {
            None => elements,
            Some(sub) => elements.into_iter().filter_map(|e| get(e, sub)).collect(),
        }
    }

    /// The object holding this attribute, created when missing.
    pub(crate) fn container_mut<'a>(&self, resource: &'a mut Value) -> Result<&'a mut Map<String, Value>, ScimError> {
        let target = match &self.urn {
            None => resource,
            Some(urn) => entry(resource, urn)?,
        };
        if target.is_null() {
            *target = Value::Object(Map::new());
        }
        target.as_object_mut().ok_or_else(|| ScimError::InvalidPath(format!("'{}' is not within an object", self.name)))
    }
}

/// A PATCH operation's target: an attribute, optionally narrowed to the
/// elements of a multi-valued one that match a filter, and to one of their
/// sub-attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a filter (`.value` in `emails[…].value`).
    pub sub: Option<String>,
}

impl PatchPath {
    pub fn parse(text: &str) -> Result<Self, ScimError> {
        let text = text.trim();
        let Some(open) = text.find('[') else {
            return Ok(Self { attr: AttrPath::parse(text)?, filter: None, sub: None });
        };
        let close = text
            .rfind(']')
            .filter(|&c| c > open)
            .ok_or_else(|| ScimError::InvalidPath(format!("'{text}' opens a filter it does not close")))?;
        let attr = AttrPath::parse(&text[..open])?;
        if attr.sub.is_some() {
            return Err(ScimError::InvalidPath(format!("'{text}' filters a sub-attribute")));
        }
        let filter = Filter::parse(&text[open + 1..close])?;
        let sub = match &text[close + 1..] {
            "" => None,
            rest => match rest.strip_prefix('.') {
                Some(sub) if valid_name(sub) => Some(sub.to_owned()),
                _ => return Err(ScimError::InvalidPath(format!("'{text}' has '{rest}' after its filter"))),
            },
        };
        Ok(Self { attr, filter: Some(filter), sub })
    }
}

/// A member of an object by case-insensitive name.
pub fn get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The key under which `name` is stored in `object`, if any (keeps the
/// resource's own spelling when a request spells it differently).
pub(crate) fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// A member of an object, inserted as `null` when missing.
fn entry<'a>(value: &'a mut Value, name: &str) -> Result<&'a mut Value, ScimError> {
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    let object =
        value.as_object_mut().ok_or_else(|| ScimError::InvalidPath(format!("'{name}' is not within an object")))?;
    let key = key_of(object, name).unwrap_or_else(|| name.to_owned());
    Ok(object.entry(key).or_insert(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_as_identity_providers_write_them() {
        assert_eq!(AttrPath::parse("userName").unwrap(), AttrPath::simple("userName"));
        let given = AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName").unwrap();
        assert_eq!((given.urn, given.name.as_str(), given.sub.as_deref()), (None, "name", Some("givenName")));
        let dept = AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department").unwrap();
        assert_eq!(dept.urn.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!(dept.name, "department");
        let email = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(email.attr.name, "emails");
        assert_eq!(email.sub.as_deref(), Some("value"));
        let member = PatchPath::parse(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
        assert!(member.filter.is_some() && member.sub.is_none());
        for bad in
            ["", "1abc", "name.", "a b", "emails[type eq \"work\"", "emails[type eq \"work\"]value", "name.given[x pr]"]
        {
            assert!(PatchPath::parse(bad).is_err(), "{bad}");
        }
    }
}
