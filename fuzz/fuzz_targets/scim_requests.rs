//! What an identity provider sends through SCIM, as arbitrary bytes: a
//! filter, an attribute path and a PATCH body. Parsing never panics, and a
//! filter that parses can be judged, and a PATCH applied, against a user.
#![no_main]

use conclave_scim::{patch, projection, Filter, PatchPath};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let user = json!({
        "id": "u1", "userName": "ada@example.org", "externalId": "00u1", "active": true,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.org", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Engines"}
    });
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(filter) = Filter::parse(text) {
            let _ = filter.matches(&user);
        }
        let _ = PatchPath::parse(text);
        if let Ok(paths) = projection::parse_list(text) {
            let mut shown = user.clone();
            projection::project(&mut shown, &paths, &paths);
        }
    }
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(ops) = patch::parse(&body) {
            let mut patched = user.clone();
            let _ = patch::apply(&mut patched, &ops);
        }
    }
});
