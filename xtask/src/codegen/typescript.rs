//! JSON Schemas, as schemars writes them for serde types, rendered as
//! TypeScript: one declaration per named schema, in name order, with the
//! Rust doc comments as JSDoc. Only what serde types produce is understood;
//! anything else is an error rather than a guess, so a new construct is
//! taught here before it reaches the web app as `unknown`.
//!
//! Every integer is a `number`: ids, counters and times are far below 2^53,
//! and JSON.parse gives numbers, never bigints.

use serde_json::{Map, Value};

/// Lines stay within this width when they can.
const WIDTH: usize = 120;

/// A constant shared with the web app, by its path under `conclave_proto`.
pub struct Constant {
    /// Where the value comes from in `conclave_proto`.
    pub path: &'static str,
    /// Its name in TypeScript.
    pub name: &'static str,
    pub value: Value,
}

/// The whole file: the header, the constants, then every declaration.
pub fn render(header: &str, constants: &[Constant], definitions: &Map<String, Value>) -> Result<String, String> {
    let mut out = String::from(header);
    for constant in constants {
        let name = constant.name;
        let literal = match &constant.value {
            Value::Array(items) => {
                format!("[{}] as const", items.iter().map(Value::to_string).collect::<Vec<_>>().join(", "))
            }
            Value::Object(entries) => {
                let fields: Vec<String> =
                    entries.iter().map(|(key, value)| format!("  {}: {value},", Value::from(key.as_str()))).collect();
                format!("{{\n{}\n}} as const", fields.join("\n"))
            }
            scalar => scalar.to_string(),
        };
        out += &format!("\n/** `conclave_proto::{}` */\nexport const {name} = {literal};\n", constant.path);
    }
    let mut names: Vec<&String> = definitions.keys().collect();
    names.sort();
    for name in names {
        let schema = &definitions[name];
        let declaration = declaration(name, schema).map_err(|e| format!("cannot render `{name}`: {e}"))?;
        out += "\n";
        out += &declaration;
    }
    Ok(out)
}

fn declaration(name: &str, schema: &Value) -> Result<String, String> {
    let mut out = doc_comment(description(schema), 0);
    let ts = to_ts(schema)?;
    let opening = format!("export type {name} = ");
    match &ts {
        Ts::Object(fields) => out += &format!("export interface {name} {}\n", object_lines(fields, 0)),
        Ts::Union(members) if !fits_inline(&ts, 0, opening.len() + 1) => {
            out += opening.trim_end();
            for member in members {
                out += "\n";
                out += &doc_comment(member.doc.as_deref(), 2);
                out += &format!("  | {}", print(&member.ts, 4));
            }
            out += ";\n";
        }
        _ => out += &format!("{opening}{};\n", print(&ts, 0)),
    }
    Ok(out)
}

/// A TypeScript type, before layout.
#[derive(Clone, Debug, PartialEq)]
enum Ts {
    /// A primitive, a literal or a declared name.
    Name(String),
    Array(Box<Ts>),
    Record(Box<Ts>),
    Object(Vec<Field>),
    Union(Vec<Member>),
}

#[derive(Clone, Debug, PartialEq)]
struct Field {
    name: String,
    optional: bool,
    doc: Option<String>,
    ts: Ts,
}

#[derive(Clone, Debug, PartialEq)]
struct Member {
    doc: Option<String>,
    ts: Ts,
}

/// Keywords that describe a schema without changing its TypeScript type.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    // Unknown fields are refused by the server; a type says what is known.
    "additionalProperties",
];

const STRUCTURE: &[&str] = &["$ref", "const", "enum", "oneOf", "anyOf", "type", "items", "properties", "required"];

fn to_ts(schema: &Value) -> Result<Ts, String> {
    let object = match schema {
        Value::Bool(true) => return Ok(Ts::Name("unknown".into())),
        Value::Bool(false) => return Ok(Ts::Name("never".into())),
        Value::Object(object) => object,
        other => return Err(format!("not a schema: {other}")),
    };
    if let Some(keyword) =
        object.keys().find(|k| !STRUCTURE.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()))
    {
        return Err(format!("the keyword `{keyword}` is not understood"));
    }
    if let Some(reference) = object.get("$ref") {
        let reference = reference.as_str().ok_or("`$ref` is not a string")?;
        let name =
            reference.strip_prefix("#/$defs/").ok_or_else(|| format!("`{reference}` is not a local definition"))?;
        return Ok(Ts::Name(name.to_owned()));
    }
    if let Some(constant) = object.get("const") {
        return literal(constant);
    }
    if let Some(values) = object.get("enum") {
        let values = values.as_array().ok_or("`enum` is not a list")?;
        let members =
            values.iter().map(|v| Ok(Member { doc: None, ts: literal(v)? })).collect::<Result<_, String>>()?;
        return Ok(union(members));
    }
    if let Some(alternatives) = object.get("oneOf").or_else(|| object.get("anyOf")) {
        if object.contains_key("type") {
            return Err("`type` beside `oneOf`/`anyOf`".into());
        }
        let alternatives = alternatives.as_array().ok_or("`oneOf`/`anyOf` is not a list")?;
        let members = alternatives
            .iter()
            .map(|a| Ok(Member { doc: description(a).map(str::to_owned), ts: to_ts(a)? }))
            .collect::<Result<_, String>>()?;
        return Ok(union(members));
    }
    let types: Vec<&str> = match object.get("type") {
        None => return Ok(Ts::Name("unknown".into())),
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(several)) => {
            several.iter().map(|t| t.as_str().ok_or("a `type` is not a string")).collect::<Result<_, _>>()?
        }
        Some(other) => return Err(format!("`type` is {other}")),
    };
    let members =
        types.into_iter().map(|t| Ok(Member { doc: None, ts: of_type(t, object)? })).collect::<Result<_, String>>()?;
    Ok(union(members))
}

/// One JSON type of a schema whose `type` may list several (`["string", "null"]`).
fn of_type(json_type: &str, schema: &Map<String, Value>) -> Result<Ts, String> {
    Ok(match json_type {
        "string" => Ts::Name("string".into()),
        "integer" | "number" => Ts::Name("number".into()),
        "boolean" => Ts::Name("boolean".into()),
        "null" => Ts::Name("null".into()),
        "array" => {
            Ts::Array(Box::new(schema.get("items").map(to_ts).transpose()?.unwrap_or(Ts::Name("unknown".into()))))
        }
        "object" => match (schema.get("properties"), schema.get("additionalProperties")) {
            (Some(properties), _) => Ts::Object(fields(properties, schema.get("required"))?),
            (None, Some(values @ Value::Object(_))) => Ts::Record(Box::new(to_ts(values)?)),
            (None, _) => Ts::Record(Box::new(Ts::Name("unknown".into()))),
        },
        other => return Err(format!("the type `{other}` is not understood")),
    })
}

/// Required fields first, in declaration order (schemars lists them so),
/// then the optional ones by name.
fn fields(properties: &Value, required: Option<&Value>) -> Result<Vec<Field>, String> {
    let properties = properties.as_object().ok_or("`properties` is not an object")?;
    let required: Vec<&str> = match required {
        Some(list) => list.as_array().ok_or("`required` is not a list")?.iter().filter_map(Value::as_str).collect(),
        None => Vec::new(),
    };
    let field = |name: &str, optional: bool| -> Result<Field, String> {
        let schema = properties.get(name).ok_or_else(|| format!("`{name}` is required but not a property"))?;
        let ts = to_ts(schema).map_err(|e| format!("field `{name}`: {e}"))?;
        Ok(Field { name: name.to_owned(), optional, doc: description(schema).map(str::to_owned), ts })
    };
    let mut fields = required.iter().map(|name| field(name, false)).collect::<Result<Vec<_>, _>>()?;
    for name in properties.keys().filter(|name| !required.contains(&name.as_str())) {
        fields.push(field(name, true)?);
    }
    Ok(fields)
}

fn literal(value: &Value) -> Result<Ts, String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => Ok(Ts::Name(value.to_string())),
        other => Err(format!("the literal {other} is not understood")),
    }
}

/// A union of these members, nested unions spread into it; one member is itself.
fn union(members: Vec<Member>) -> Ts {
    let mut flat = Vec::new();
    for member in members {
        match member {
            Member { doc: None, ts: Ts::Union(inner) } => flat.extend(inner),
            member => flat.push(member),
        }
    }
    match <[Member; 1]>::try_from(flat) {
        Ok([only]) if only.doc.is_none() => only.ts,
        Ok([only]) => Ts::Union(vec![only]),
        Err(flat) => Ts::Union(flat),
    }
}

fn description(schema: &Value) -> Option<&str> {
    schema.get("description").and_then(Value::as_str).filter(|d| !d.trim().is_empty())
}

/// The type on one line, if it can be written so and fits in what is left
/// of a line indented by `indent` after `taken` other characters.
fn fits_inline(ts: &Ts, indent: usize, taken: usize) -> bool {
    inline(ts).is_some_and(|text| indent + taken + text.len() <= WIDTH)
}

/// One-line form; `None` when a doc comment must be kept.
fn inline(ts: &Ts) -> Option<String> {
    Some(match ts {
        Ts::Name(name) => name.clone(),
        Ts::Array(item) => match **item {
            Ts::Union(_) => format!("({})[]", inline(item)?),
            _ => format!("{}[]", inline(item)?),
        },
        Ts::Record(value) => format!("Record<string, {}>", inline(value)?),
        Ts::Union(members) => {
            let parts = members.iter().map(|m| if m.doc.is_some() { None } else { inline(&m.ts) });
            parts.collect::<Option<Vec<_>>>()?.join(" | ")
        }
        Ts::Object(fields) if fields.is_empty() => "Record<string, never>".into(),
        Ts::Object(fields) => {
            let parts = fields.iter().map(|field| match field.doc {
                Some(_) => None,
                None => Some(format!("{}: {}", key(field), inline(&field.ts)?)),
            });
            format!("{{ {} }}", parts.collect::<Option<Vec<_>>>()?.join("; "))
        }
    })
}

/// The type as it continues a line whose next lines are indented by
/// `indent`: inline when it fits, else spread over lines.
fn print(ts: &Ts, indent: usize) -> String {
    if fits_inline(ts, indent, 0) {
        return inline(ts).expect("it fits, so it has a one-line form");
    }
    match ts {
        Ts::Object(fields) => object_lines(fields, indent),
        Ts::Array(item) => format!("Array<{}>", print(item, indent)),
        Ts::Record(value) => format!("Record<string, {}>", print(value, indent)),
        Ts::Union(members) => {
            let mut out = String::new();
            for member in members {
                out += "\n";
                out += &doc_comment(member.doc.as_deref(), indent + 2);
                out += &format!("{}| {}", " ".repeat(indent + 2), print(&member.ts, indent + 4));
            }
            out
        }
        Ts::Name(name) => name.clone(),
    }
}

fn object_lines(fields: &[Field], indent: usize) -> String {
    let inner = " ".repeat(indent + 2);
    let mut out = String::from("{\n");
    for field in fields {
        out += &doc_comment(field.doc.as_deref(), indent + 2);
        let key = key(field);
        // `key: ` and the `;` after the type share the line.
        let ts = if fits_inline(&field.ts, indent + 2, key.len() + 3) {
            inline(&field.ts).expect("it fits, so it has a one-line form")
        } else {
            print(&field.ts, indent + 2)
        };
        // A union spread over lines starts on the next one.
        let space = if ts.starts_with('\n') { "" } else { " " };
        out += &format!("{inner}{key}:{space}{ts};\n");
    }
    out + &" ".repeat(indent) + "}"
}

/// `name` or `name?`, quoted when not an identifier.
fn key(field: &Field) -> String {
    let mut chars = field.name.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    let name = if identifier { field.name.clone() } else { Value::from(field.name.as_str()).to_string() };
    if field.optional {
        name + "?"
    } else {
        name
    }
}

/// JSDoc at this indentation, one line when it fits; empty for no doc.
fn doc_comment(doc: Option<&str>, indent: usize) -> String {
    let Some(doc) = doc else { return String::new() };
    let pad = " ".repeat(indent);
    let doc = without_rust_links(doc.trim()).replace("*/", "*\\/");
    if !doc.contains('\n') && indent + doc.len() + 7 <= WIDTH {
        return format!("{pad}/** {doc} */\n");
    }
    let mut out = format!("{pad}/**\n");
    for line in doc.lines() {
        out += &if line.trim().is_empty() { format!("{pad} *\n") } else { format!("{pad} * {line}\n") };
    }
    out + &pad + " */\n"
}

/// Rustdoc links name Rust items, which mean nothing in TypeScript: their
/// text stays, their target goes (``[`Foo`](crate::foo::Foo)`` and
/// ``[`Foo`]`` become `` `Foo` ``).
fn without_rust_links(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(open) = rest.find("[`") {
        let Some(close) = rest[open..].find("`]").map(|at| open + at) else { break };
        let code = &rest[open + 1..close + 1];
        let after = &rest[close + 2..];
        let (kept, next) = match after.strip_prefix('(').and_then(|t| t.split_once(')')) {
            // A web link is a link in TypeScript too.
            Some((target, _)) if target.contains("://") => (&rest[open..close + 2], after),
            Some((_, next)) => (code, next),
            None => (code, after),
        };
        out += &rest[..open];
        out += kept;
        rest = next;
    }
    out + rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render_one(schema: Value) -> String {
        let definitions = json!({ "Thing": schema });
        render("", &[], definitions.as_object().unwrap()).unwrap()
    }

    #[test]
    fn objects_put_required_fields_first_and_mark_the_others_optional() {
        let ts = render_one(json!({
            "description": "A thing.",
            "type": "object",
            "properties": {
                "b": { "type": ["integer", "null"], "format": "uint64" },
                "a": { "type": "string", "description": "Said first." },
                "z": { "type": "array", "items": { "$ref": "#/$defs/Other" } },
            },
            "required": ["z", "b"],
        }));
        assert_eq!(
            ts,
            "\n/** A thing. */\nexport interface Thing {\n  z: Other[];\n  b: number | null;\n  /** Said first. */\n  a?: string;\n}\n"
        );
    }

    #[test]
    fn tagged_enums_become_discriminated_unions() {
        let ts = render_one(json!({
            "oneOf": [
                { "type": "object", "properties": { "type": { "type": "string", "const": "ping" } }, "required": ["type"] },
                {
                    "description": "Say something.",
                    "type": "object",
                    "properties": { "type": { "const": "chat" }, "text": { "type": "string" } },
                    "required": ["type", "text"],
                },
            ]
        }));
        assert_eq!(
            ts,
            "\nexport type Thing =\n  | { type: \"ping\" }\n  /** Say something. */\n  | { type: \"chat\"; text: string };\n"
        );
    }

    #[test]
    fn a_long_union_in_a_field_is_spread_over_lines() {
        let long = "x".repeat(60);
        let ts = render_one(json!({
            "type": "object",
            "properties": { "f": { "enum": [format!("a{long}"), format!("b{long}")] } },
            "required": ["f"],
        }));
        assert_eq!(ts, format!("\nexport interface Thing {{\n  f:\n    | \"a{long}\"\n    | \"b{long}\";\n}}\n"));
    }

    #[test]
    fn string_enums_become_unions_of_literals() {
        assert_eq!(
            render_one(json!({ "type": "string", "enum": ["a", "b"] })),
            "\nexport type Thing = \"a\" | \"b\";\n"
        );
    }

    #[test]
    fn what_is_not_understood_is_refused() {
        let definitions = json!({ "Thing": { "allOf": [] } });
        let error = render("", &[], definitions.as_object().unwrap()).unwrap_err();
        assert!(error.contains("`allOf`"), "{error}");
    }

    #[test]
    fn rustdoc_links_keep_their_text() {
        assert_eq!(without_rust_links("a [`Foo`](crate::foo::Foo) b"), "a `Foo` b");
        assert_eq!(without_rust_links("a [`Foo`]'s b"), "a `Foo`'s b");
        assert_eq!(without_rust_links("[`RFC`](https://example.org)"), "[`RFC`](https://example.org)");
        assert_eq!(without_rust_links("a [b] `c` [`d"), "a [b] `c` [`d");
    }

    #[test]
    fn constants_keep_their_rust_names() {
        let constants = [Constant { path: "signal::REACTIONS", name: "REACTIONS", value: json!(["👏"]) }];
        assert_eq!(
            render("", &constants, &Map::new()).unwrap(),
            "\n/** `conclave_proto::signal::REACTIONS` */\nexport const REACTIONS = [\"👏\"] as const;\n"
        );
    }

    #[test]
    fn object_constants_are_records_of_their_values() {
        let constants = [Constant {
            path: "audit::AuditAction::description",
            name: "DESCRIPTIONS",
            value: json!({ "a.b": "What \"b\" means." }),
        }];
        assert_eq!(
            render("", &constants, &Map::new()).unwrap(),
            "\n/** `conclave_proto::audit::AuditAction::description` */\nexport const DESCRIPTIONS = {\n  \"a.b\": \"What \\\"b\\\" means.\",\n} as const;\n"
        );
    }
}
