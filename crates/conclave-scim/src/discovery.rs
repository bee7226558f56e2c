//! What a SCIM client reads before provisioning (RFC 7644 §4): the
//! service provider's features, its resource types, and the schemas of the
//! attributes it keeps. Only what the server really supports is claimed;
//! attributes of other schemas (the enterprise extension) are accepted and
//! not kept.

use crate::{GROUP_SCHEMA, LIST_SCHEMA, MAX_PAGE, USER_SCHEMA};
use serde_json::{json, Value};

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://conclave.dev/docs/scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_PAGE},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The organisation's SCIM token, made by one of its administrators",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A person of the organisation",
            "schema": USER_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")}
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A group of the organisation's people",
            "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")}
        }),
    ]
}

fn attribute(name: &str, kind: &str, required: bool, case_exact: bool, mutability: &str, uniqueness: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": if name == "password" { "never" } else { "default" },
        "uniqueness": uniqueness,
    })
}

fn sub_attributes(name: &str, multi_valued: bool, mutability: &str, subs: Vec<Value>) -> Value {
    json!({
        "name": name,
        "type": "complex",
        "multiValued": multi_valued,
        "required": false,
        "mutability": mutability,
        "returned": "default",
        "subAttributes": subs,
    })
}

/// A `$ref` to a resource of one of `types`.
fn reference(types: &[&str], mutability: &str) -> Value {
    json!({
        "name": "$ref",
        "type": "reference",
        "referenceTypes": types,
        "multiValued": false,
        "required": false,
        "caseExact": true,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": "none",
    })
}

pub fn schemas(base: &str) -> Vec<Value> {
    let string = |name: &str| attribute(name, "string", false, false, "readWrite", "none");
    let user = json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A person of the organisation",
        "attributes": [
            attribute("userName", "string", true, false, "readWrite", "server"),
            attribute("externalId", "string", false, true, "readWrite", "none"),
            string("displayName"),
            sub_attributes("name", false, "readWrite", vec![string("formatted"), string("givenName"), string("familyName")]),
            sub_attributes("emails", true, "readWrite", vec![string("value"), string("type"), attribute("primary", "boolean", false, false, "readWrite", "none")]),
            attribute("active", "boolean", false, false, "readWrite", "none"),
            attribute("password", "string", false, false, "writeOnly", "none"),
            // Group membership is changed through the groups, never here.
            sub_attributes("groups", true, "readOnly", vec![
                attribute("value", "string", false, true, "readOnly", "none"),
                reference(&["Group"], "readOnly"),
                attribute("display", "string", false, false, "readOnly", "none"),
            ]),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}")}
    });
    let group = json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A group of the organisation's people",
        "attributes": [
            attribute("displayName", "string", true, false, "readWrite", "none"),
            attribute("externalId", "string", false, true, "readWrite", "none"),
            // Members are the organisation's users (groups do not nest).
            sub_attributes("members", true, "readWrite", vec![
                attribute("value", "string", false, true, "immutable", "none"),
                reference(&["User"], "immutable"),
            ]),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}")}
    });
    vec![user, group]
}

/// A list of discovery resources, as `/Schemas` and `/ResourceTypes` answer.
pub fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
