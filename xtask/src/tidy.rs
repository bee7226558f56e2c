//! `cargo xtask tidy`: the checks that keep the documents honest about the
//! code, run by `cargo test --workspace` through this module's test.
//!
//! - Every path ARCHITECTURE.md names in backticks exists: each code-map
//!   row's path exactly, and every other name (`room.rs`, `live/actor.rs`)
//!   as the end of some file's path. A file that moves or goes without the
//!   map changing fails here.
//! - Every JSON example in `docs/protocol.md` is the message it illustrates.
//!   A ```` ```json ```` fence says which type its values are (```` ```json
//!   ClientMessage ````); in the flows, `→` lines are client messages and
//!   `←` lines server messages. What the server writes must survive a round
//!   trip unchanged (a field added to the Rust type and not to the example
//!   fails); what clients write must parse, unknown fields refused. HTTP
//!   exchanges in plain fences (`POST /api/v1/… {request}`, then `→ 201
//!   {response}`) are checked as the route's request and response bodies;
//!   one shown in part (`…`) only for its fields, each of which the type
//!   must have.
//! - The table of signaling error codes in `docs/protocol.md` has a row for
//!   every `ErrorCode`, and only those.
//! - A production build carries no test hooks: the `conclave` binary's
//!   dependency tree, without dev-dependencies, has no `test-hooks` feature.

use std::path::{Path, PathBuf};
use std::process::Command;

use conclave_proto::meeting::{JoinMeetingRequest, JoinTicket, MeetingPreview, MeetingPreviewRequest};
use conclave_proto::problem::{Problem, ProblemCode, PROBLEM_BASE};
use conclave_proto::signal::{ClientMessage, ErrorCode, ServerMessage};
use conclave_proto::{conversation, file};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub fn run() -> Result<(), String> {
    let problems = check(&crate::web::root());
    if problems.is_empty() {
        eprintln!("xtask: tidy");
        return Ok(());
    }
    Err(format!("tidy found {} problem(s):\n  {}", problems.len(), problems.join("\n  ")))
}

/// Every problem found, as one line each.
pub fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let files = repository_files(root);
    match std::fs::read_to_string(root.join("ARCHITECTURE.md")) {
        Ok(text) => problems.extend(architecture_paths(&text, &files)),
        Err(e) => problems.push(format!("ARCHITECTURE.md: {e}")),
    }
    match std::fs::read_to_string(root.join("docs/protocol.md")) {
        Ok(text) => {
            problems.extend(protocol_examples(&text));
            problems.extend(rest_examples(&text));
            problems.extend(error_code_table(&text));
        }
        Err(e) => problems.push(format!("docs/protocol.md: {e}")),
    }
    problems.extend(production_has_no_test_hooks(root));
    problems
}

// ARCHITECTURE.md

/// File names the documents may name: a backticked word ending in one of
/// these (or in `/`, for a folder) is taken for a path.
const EXTENSIONS: &[&str] =
    &[".rs", ".ts", ".tsx", ".mjs", ".md", ".sh", ".py", ".sql", ".txt", ".toml", ".json", ".css", ".html"];

fn architecture_paths(text: &str, files: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_code_map = false;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if let Some(heading) = line.strip_prefix("## ") {
            in_code_map = heading.trim() == "Code map";
            continue;
        }
        let row = in_code_map.then(|| line.strip_prefix('|')).flatten();
        let rest = match row.and_then(|r| r.split_once('|')) {
            Some((first, rest)) if !first.contains("---") && first.trim() != "path" => {
                let path = backticked(first).next().unwrap_or_default();
                if !exists(files, path) {
                    problems
                        .push(format!("ARCHITECTURE.md:{number}: the code map names `{path}`, which does not exist"));
                }
                rest
            }
            _ => line,
        };
        // A row's names are mostly its own files, but may point elsewhere
        // ("the server's `media.rs`"): a name is right if any file has it.
        // Folders in a name (`meetings/actor.rs`) make it precise.
        for name in backticked(rest).filter(|n| looks_like_path(n)) {
            if !files.iter().any(|f| ends_with_path(f, name)) {
                problems.push(format!("ARCHITECTURE.md:{number}: `{name}` does not exist"));
            }
        }
    }
    problems
}

fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

fn looks_like_path(name: &str) -> bool {
    !name.contains(char::is_whitespace)
        && !name.contains("::")
        && !name.starts_with('-')
        && !name.contains('*')
        && (name.ends_with('/') || EXTENSIONS.iter().any(|e| name.ends_with(e)))
}

fn exists(files: &[String], path: &str) -> bool {
    let path = path.trim_end_matches('/');
    !path.is_empty() && files.iter().any(|f| f == path || f.starts_with(&format!("{path}/")))
}

/// `crates/conclave-room/src/room.rs` ends with `room.rs` and `src/room.rs`;
/// a folder `meetings/` matches any file in a folder of that name.
fn ends_with_path(file: &str, name: &str) -> bool {
    if let Some(folder) = name.strip_suffix('/') {
        return file.contains(&format!("/{folder}/")) || file.starts_with(&format!("{folder}/"));
    }
    file == name || file.ends_with(&format!("/{name}"))
}

/// The repository's files (tracked or not, ignored ones left out), relative
/// to its root with `/` separators.
fn repository_files(root: &Path) -> Vec<String> {
    let output =
        Command::new("git").args(["ls-files", "--cached", "--others", "--exclude-standard"]).current_dir(root).output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect(),
        _ => walk(root),
    }
}

/// Without git (a source archive): every file but the build's and npm's.
fn walk(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if matches!(name.to_str(), Some("target" | "node_modules" | ".git")) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files
}

// docs/protocol.md

/// The types an example may illustrate, by the name its fence gives.
fn check_as(kind: &str, value: &Value) -> Result<(), String> {
    match kind {
        // The server's own strict parser (serde alone lets unknown fields
        // through on messages without fields).
        "ClientMessage" => ClientMessage::from_json(&value.to_string()).map(|_| ()),
        "ServerMessage" => round_trips::<ServerMessage>(value),
        "JoinMeetingRequest" => parses::<JoinMeetingRequest>(value),
        "MeetingPreviewRequest" => parses::<MeetingPreviewRequest>(value),
        "MeetingPreview" => round_trips::<MeetingPreview>(value),
        "JoinTicket" => round_trips::<JoinTicket>(value),
        // HTTP bodies: requests parse, responses survive a round trip.
        "CreateConversationRequest" => parses::<conversation::CreateConversationRequest>(value),
        "InviteGuestRequest" => parses::<conversation::InviteGuestRequest>(value),
        "GuestSignupRequest" => parses::<conversation::GuestSignupRequest>(value),
        "AcceptGuestInvitationRequest" => parses::<conversation::AcceptGuestInvitationRequest>(value),
        "SendMessageRequest" => parses::<conversation::SendMessageRequest>(value),
        "StartUploadRequest" => parses::<file::StartUploadRequest>(value),
        "StorageSettings" => parses::<file::StorageSettings>(value),
        "MessageAccepted" => round_trips::<conversation::MessageAccepted>(value),
        "Conversation" => round_trips::<conversation::Conversation>(value),
        "GuestInvitation" => round_trips::<conversation::GuestInvitation>(value),
        "EntryPage" => round_trips::<conversation::EntryPage>(value),
        "FileStatus" => round_trips::<file::FileStatus>(value),
        "StorageView" => round_trips::<file::StorageView>(value),
        "Problem" => {
            round_trips::<Problem>(value)?;
            let kind = value["type"].as_str().unwrap_or_default();
            let code = kind.strip_prefix(PROBLEM_BASE).ok_or_else(|| format!("`{kind}` is not a Conclave problem"))?;
            ProblemCode::parse(code).map(|_| ()).ok_or_else(|| format!("`{code}` is not a problem code"))
        }
        other => Err(format!("the fence names `{other}`, which tidy does not know (see xtask/src/tidy.rs)")),
    }
}

fn parses<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    T::deserialize(value).map(|_| ()).map_err(|e| e.to_string())
}

fn round_trips<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let parsed = T::deserialize(value).map_err(|e| e.to_string())?;
    let written = serde_json::to_value(parsed).map_err(|e| e.to_string())?;
    match first_difference(value, &written, "") {
        None => Ok(()),
        Some(difference) => Err(format!("written back, it differs: {difference}")),
    }
}

/// Where `written` (what serde writes) differs from the `example`.
fn first_difference(example: &Value, written: &Value, at: &str) -> Option<String> {
    match (example, written) {
        (Value::Object(a), Value::Object(b)) => {
            if let Some(key) = b.keys().find(|k| !a.contains_key(*k)) {
                return Some(format!("`{at}{key}` is missing from the example"));
            }
            if let Some(key) = a.keys().find(|k| !b.contains_key(*k)) {
                return Some(format!("`{at}{key}` is not a field"));
            }
            a.iter().find_map(|(key, value)| first_difference(value, &b[key], &format!("{at}{key}.")))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}{i}.")))
        }
        _ if example == written => None,
        _ => Some(format!("`{}` is written as {written}", at.trim_end_matches('.'))),
    }
}

fn protocol_examples(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fence: Option<(usize, Option<String>, String)> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match fence.take() {
                Some((start, Some(kind), body)) => problems.extend(json_block(start, &kind, &body)),
                Some((_, None, _)) => {}
                None => {
                    let mut words = info.split_whitespace();
                    let kind = match (words.next(), words.next()) {
                        (Some("json"), Some(kind)) => Some(kind.to_owned()),
                        (Some("json"), None) => {
                            problems.push(format!("docs/protocol.md:{number}: a json fence must name its type"));
                            None
                        }
                        _ => None,
                    };
                    fence = Some((number, kind, String::new()));
                }
            }
            continue;
        }
        match &mut fence {
            Some((_, Some(_), body)) => {
                body.push_str(line);
                body.push('\n');
            }
            Some((_, None, _)) => problems.extend(flow_line(number, line)),
            None => {}
        }
    }
    if let Some((start, _, _)) = fence {
        problems.push(format!("docs/protocol.md:{start}: a fence is never closed"));
    }
    problems
}

/// The values of a ```json block, one after another.
fn json_block(start: usize, kind: &str, body: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut count = 0;
    for value in serde_json::Deserializer::from_str(body).into_iter::<Value>() {
        count += 1;
        match value {
            Ok(value) => {
                if let Err(e) = check_as(kind, &value) {
                    problems.push(format!("docs/protocol.md:{start}: example {count} is not a {kind}: {e}: {value}"));
                }
            }
            Err(e) => {
                problems.push(format!("docs/protocol.md:{start}: example {count} is not JSON: {e}"));
                break;
            }
        }
    }
    if count == 0 {
        problems.push(format!("docs/protocol.md:{start}: an empty json block"));
    }
    problems
}

/// `Ada   → {…}` is a client message, `Grace ← {…}` a server message.
fn flow_line(number: usize, line: &str) -> Option<String> {
    let (kind, json) = [("→", "ClientMessage"), ("←", "ServerMessage")]
        .into_iter()
        .find_map(|(arrow, kind)| line.split_once(arrow).map(|(_, rest)| (kind, rest.trim())))?;
    if !json.starts_with('{') {
        return None;
    }
    let checked = if is_abbreviated(json) {
        known_type(kind, json)
    } else {
        // One value, then perhaps a remark: `{"type":"removed"}  (then the socket is closed)`.
        let mut values = serde_json::Deserializer::from_str(json).into_iter::<Value>();
        let value = values.next().unwrap_or_else(|| Err(serde::de::Error::custom("no JSON")));
        let remark = json[values.byte_offset()..].trim();
        match value {
            Ok(_) if !remark.is_empty() && !remark.starts_with('(') => Err(format!("`{remark}` after the message")),
            Ok(value) => check_as(kind, &value),
            Err(e) => Err(e.to_string()),
        }
    };
    checked.err().map(|e| format!("docs/protocol.md:{number}: not a {kind}: {e}"))
}

/// A message shown in part: `…` outside its strings stands for what is
/// left out.
fn is_abbreviated(json: &str) -> bool {
    in_strings(json).any(|(_, c, part)| c == '…' && part == Part::Outside)
}

/// Where a character of some JSON text stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Outside,
    /// A string's opening or closing quote.
    Quote,
    /// Inside a string (escapes included).
    Body,
}

/// Each character of some JSON text with its byte offset and where it
/// stands: the one place that knows where strings begin and end.
fn in_strings(json: &str) -> impl Iterator<Item = (usize, char, Part)> + '_ {
    let (mut inside, mut escaped) = (false, false);
    json.char_indices().map(move |(at, c)| {
        let part = match c {
            _ if escaped => {
                escaped = false;
                Part::Body
            }
            '\\' if inside => {
                escaped = true;
                Part::Body
            }
            '"' => {
                inside = !inside;
                Part::Quote
            }
            _ if inside => Part::Body,
            _ => Part::Outside,
        };
        (at, c, part)
    })
}

/// Of an abbreviated message, only its `type` can be checked.
fn known_type(kind: &str, json: &str) -> Result<(), String> {
    let tag = json.split("\"type\":\"").nth(1).and_then(|rest| rest.split('"').next());
    let Some(tag) = tag else { return Err("no `type`".into()) };
    let probe = serde_json::json!({ "type": tag });
    match check_as(kind, &probe) {
        Err(e) if e.contains("unknown variant") => Err(format!("no message has the type `{tag}`")),
        _ => Ok(()),
    }
}

// HTTP exchanges.

/// The bodies each documented route takes and answers with, by name (see
/// [`check_as`] and [`fields_of`]); `{}` in a path is any one segment.
const ROUTES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("POST", "/api/v1/conversations", Some("CreateConversationRequest"), Some("Conversation")),
    ("POST", "/api/v1/conversations/{}/guests", Some("InviteGuestRequest"), Some("GuestInvitation")),
    ("POST", "/api/v1/auth/guest-signup", Some("GuestSignupRequest"), None),
    ("POST", "/api/v1/me/guest-invitations", Some("AcceptGuestInvitationRequest"), Some("Conversation")),
    ("POST", "/api/v1/conversations/{}/messages", Some("SendMessageRequest"), Some("MessageAccepted")),
    ("GET", "/api/v1/conversations/{}/entries", None, Some("EntryPage")),
    ("POST", "/api/v1/conversations/{}/files", Some("StartUploadRequest"), Some("FileStatus")),
    ("PUT", "/api/v1/files/{}/parts/{}", None, None),
    ("GET", "/api/v1/files/{}", None, Some("FileStatus")),
    ("POST", "/api/v1/files/{}/complete", None, None),
    ("GET", "/api/v1/files/{}/parts/{}", None, None),
    ("DELETE", "/api/v1/files/{}", None, None),
    ("PUT", "/api/v1/orgs/{}/storage", Some("StorageSettings"), Some("StorageView")),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The request and response bodies of a documented route.
fn route(method: &str, path: &str) -> Option<(Option<&'static str>, Option<&'static str>)> {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES.iter().find_map(|(m, pattern, request, response)| {
        let pattern: Vec<&str> = pattern.split('/').collect();
        let matches = *m == method
            && pattern.len() == segments.len()
            && pattern.iter().zip(&segments).all(|(p, s)| *p == "{}" || p == s);
        matches.then_some((*request, *response))
    })
}

fn rest_examples(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    // Inside a fence: whether it is a plain one (no language named).
    let mut fence: Option<bool> = None;
    let mut bodies: Option<(Option<&str>, Option<&str>)> = None;
    let mut i = 0;
    while i < lines.len() {
        let (number, trimmed) = (i + 1, lines[i].trim_start());
        i += 1;
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().is_empty()),
            };
            bodies = None;
            continue;
        }
        if fence != Some(true) {
            continue;
        }
        let (request, response) = match trimmed.split_once(' ') {
            Some((method, rest)) if METHODS.contains(&method) => {
                let rest = rest.trim_start();
                let (path, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                if !path.starts_with('/') {
                    // Not the HTTP API (a WebSocket URL, say).
                    bodies = None;
                    continue;
                }
                bodies = route(method, path);
                if bodies.is_none() {
                    problems.push(format!("docs/protocol.md:{number}: `{method} {path}` is not a route tidy knows (see ROUTES in xtask/src/tidy.rs)"));
                    continue;
                }
                let (request, response) = after.split_once('→').unwrap_or((after, ""));
                (Some(request.trim()), Some(response.trim()))
            }
            _ => match trimmed.strip_prefix('→') {
                Some(response) => (None, Some(response.trim())),
                // A request body on the lines after its request line.
                None if trimmed.starts_with('{') => (Some(trimmed), None),
                None => continue,
            },
        };
        let Some((request_type, response_type)) = bodies else { continue };
        let mut check = |kind: Option<&str>, text: &str, i: &mut usize| {
            let Some(start) = text.find('{') else { return };
            let json = balanced_json(&text[start..], &lines, i);
            let Some(kind) = kind else {
                problems.push(format!("docs/protocol.md:{number}: a body where the route takes none"));
                return;
            };
            let checked = if is_abbreviated(&json) {
                fields_shown(&json).into_iter().try_for_each(|field| match fields_of(kind) {
                    Some(known) if known.contains(&field) => Ok(()),
                    Some(_) => Err(format!("a {kind} has no field `{field}`")),
                    None => Err(format!("tidy does not know the fields of `{kind}`")),
                })
            } else {
                serde_json::from_str::<Value>(&json).map_err(|e| e.to_string()).and_then(|v| check_as(kind, &v))
            };
            if let Err(e) = checked {
                problems.push(format!("docs/protocol.md:{number}: not a {kind}: {e}"));
            }
        };
        if let Some(body) = request.filter(|r| r.starts_with('{')) {
            check(request_type, body, &mut i);
        }
        // `→ 201 {…}`: a status, then the body (if any).
        if let Some(body) = response.and_then(|r| r.split_once(' ')).map(|(_, b)| b.trim_start()) {
            if body.starts_with('{') {
                check(response_type, body, &mut i);
            }
        }
    }
    problems
}

/// The JSON value starting `text`, taking the following lines (from `*i`)
/// while its braces are open; whatever follows it (a remark) is left out.
fn balanced_json(text: &str, lines: &[&str], i: &mut usize) -> String {
    let mut json = text.to_owned();
    loop {
        if let Some(end) = value_end(&json) {
            json.truncate(end);
            return json;
        }
        let Some(next) = lines.get(*i) else { return json };
        json.push_str(next.trim());
        *i += 1;
    }
}

/// Where the value that `json` starts with ends, once its brackets close.
fn value_end(json: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (at, c, _) in in_strings(json).filter(|(_, _, part)| *part == Part::Outside) {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at + c.len_utf8());
                }
            }
            _ => {}
        }
    }
    None
}

/// The names of an object's own fields, shown in part or whole.
fn fields_shown(json: &str) -> Vec<String> {
    let (mut fields, mut depth, mut string_at) = (Vec::new(), 0, None);
    let chars: Vec<(usize, char, Part)> = in_strings(json).collect();
    for (n, &(at, c, part)) in chars.iter().enumerate() {
        match (part, c, string_at) {
            (Part::Quote, _, None) => string_at = Some(at + 1),
            (Part::Quote, _, Some(start)) => {
                string_at = None;
                let next = chars[n + 1..].iter().map(|&(_, c, _)| c).find(|c| !c.is_whitespace());
                if depth == 1 && next == Some(':') {
                    fields.push(json[start..at].to_owned());
                }
            }
            (Part::Outside, '{' | '[', _) => depth += 1,
            (Part::Outside, '}' | ']', _) => depth -= 1,
            _ => {}
        }
    }
    fields
}

/// The fields a body type may have (of any of its variants), from its JSON Schema.
fn fields_of(kind: &str) -> Option<std::collections::BTreeSet<String>> {
    use conclave_proto::conversation as c;
    use conclave_proto::file as f;
    let schema = match kind {
        "CreateConversationRequest" => schemars::schema_for!(c::CreateConversationRequest),
        "Conversation" => schemars::schema_for!(c::Conversation),
        "InviteGuestRequest" => schemars::schema_for!(c::InviteGuestRequest),
        "GuestInvitation" => schemars::schema_for!(c::GuestInvitation),
        "GuestSignupRequest" => schemars::schema_for!(c::GuestSignupRequest),
        "AcceptGuestInvitationRequest" => schemars::schema_for!(c::AcceptGuestInvitationRequest),
        "SendMessageRequest" => schemars::schema_for!(c::SendMessageRequest),
        "MessageAccepted" => schemars::schema_for!(c::MessageAccepted),
        "EntryPage" => schemars::schema_for!(c::EntryPage),
        "StartUploadRequest" => schemars::schema_for!(f::StartUploadRequest),
        "FileStatus" => schemars::schema_for!(f::FileStatus),
        "StorageSettings" => schemars::schema_for!(f::StorageSettings),
        "StorageView" => schemars::schema_for!(f::StorageView),
        _ => return None,
    };
    let root = schema.as_value();
    let mut fields = std::collections::BTreeSet::new();
    let variants = ["oneOf", "anyOf", "allOf"].iter().flat_map(|k| root[*k].as_array().cloned().unwrap_or_default());
    for object in std::iter::once(root.clone()).chain(variants) {
        if let Some(properties) = object["properties"].as_object() {
            fields.extend(properties.keys().cloned());
        }
    }
    Some(fields)
}

/// The rows of the table whose header is `| code | from | cause |`.
fn error_code_table(text: &str) -> Vec<String> {
    let mut listed = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.replace(' ', "") == "|code|from|cause|" {
            in_table = true;
        } else if in_table && !line.starts_with('|') {
            break;
        } else if in_table && !line.contains("---") {
            listed.extend(line.split('|').nth(1).and_then(|cell| backticked(cell).next()).map(str::to_owned));
        }
    }
    let mut problems: Vec<String> = ErrorCode::ALL
        .iter()
        .filter(|code| !listed.iter().any(|l| l == code.as_str()))
        .map(|code| format!("docs/protocol.md: the error table has no row for `{code}`"))
        .collect();
    problems.extend(
        listed
            .iter()
            .filter(|l| ErrorCode::parse(l).is_none())
            .map(|l| format!("docs/protocol.md: the error table lists `{l}`, which is not an ErrorCode")),
    );
    problems
}

// Test hooks

fn production_has_no_test_hooks(root: &Path) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--package", "conclave", "--edges", "normal,build", "--format", "{p} {f}", "--prefix", "none"])
        .current_dir(root)
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| line.contains("test-hooks"))
            .map(|line| format!("the production binary is built with test hooks: {line}"))
            .collect(),
        Ok(out) => vec![format!("cargo tree failed: {}", String::from_utf8_lossy(&out.stderr).trim())],
        Err(e) => vec![format!("cannot run cargo tree: {e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_match_the_code() {
        let problems = check(&crate::web::root());
        assert!(problems.is_empty(), "run `cargo xtask tidy`:\n  {}", problems.join("\n  "));
    }

    #[test]
    fn a_moved_file_is_caught_in_the_code_map_and_elsewhere() {
        let files: Vec<String> =
            ["crates/room/src/room.rs", "crates/room/tests/sim.rs", "docs/protocol.md"].map(String::from).into();
        let text = "## Code map\n\n| path | what |\n|---|---|\n\
                    | `crates/room/` | `room.rs`, `tests/sim.rs`, `chat.rs`, `Room::handle` |\n\
                    | `crates/gone/` | nothing |\n\n## Invariants\n\n- see `docs/protocol.md` and `hub.rs`\n";
        let problems = architecture_paths(text, &files);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("`chat.rs` does not exist"));
        assert!(problems[1].contains("`crates/gone/`"));
        assert!(problems[2].contains("`hub.rs` does not exist"));
    }

    #[test]
    fn a_stale_example_is_caught() {
        // A server message missing a field the server writes.
        let text = "```json ServerMessage\n{\"type\":\"chat_ack\",\"client_msg_id\":\"a\"}\n```\n";
        assert_eq!(protocol_examples(text).len(), 1);
        // A client message with a field the server refuses.
        let text = "```json ClientMessage\n{\"type\":\"ping\",\"at\":1}\n```\n";
        assert_eq!(protocol_examples(text).len(), 1);
        // Flow lines whose types do not exist, shown whole or in part.
        let text = "```\nAda → {\"type\":\"shout\"}\nAda ← {\"type\":\"pong\"}  (a remark)\n\
                    Ada ← {\"type\":\"yell\",…}\nAda ← {\"type\":\"admitted\",…}\n```\n";
        assert_eq!(protocol_examples(text).len(), 2, "{:#?}", protocol_examples(text));
        // An untyped json fence.
        assert_eq!(protocol_examples("```json\n{}\n```\n").len(), 1);
        let good = "```json ServerMessage\n{\"type\":\"chat_ack\",\"client_msg_id\":\"a\",\"seq\":2}\n{\"type\":\"pong\"}\n```\n";
        assert_eq!(protocol_examples(good), Vec::<String>::new());
    }

    #[test]
    fn http_examples_are_held_to_their_routes_bodies() {
        let fence = |body: &str| format!("```\n{body}\n```\n");
        // Whole bodies parse as the route's request and survive as its response.
        let good = fence(
            "POST /api/v1/conversations/{id}/messages\n  {\"device_id\":\"d\",\"client_id\":\"c\",\n   \"epoch\":3,\"content\":\"x\"}\n→ 201 {\"seq\":41,\"duplicate\":false}   (a remark)",
        );
        assert_eq!(rest_examples(&good), Vec::<String>::new());
        // A field the request does not have, in whole or in part; a response
        // missing a field; a route nobody documented.
        let bad = fence(
            "POST /api/v1/conversations {\"kind\":\"group\",\"colour\":\"red\"}\n\
             POST /api/v1/conversations {…,\"colour\":\"red\"}\n\
             → 201 {\"id\":\"…\",\"flavour\":1,…}\n\
             POST /api/v1/conversations/{id}/messages\n→ 201 {\"seq\":41}\n\
             PATCH /api/v1/nowhere {}",
        );
        let problems = rest_examples(&bad);
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].contains("colour") && problems[1].contains("colour"), "{problems:#?}");
        assert!(problems[2].contains("flavour") && problems[3].contains("duplicate"), "{problems:#?}");
        assert!(problems[4].contains("not a route"), "{problems:#?}");
        // A WebSocket URL is not the HTTP API.
        assert!(rest_examples(&fence("GET wss://meet.example.org/api/v1/signal?v=1")).is_empty());
    }

    #[test]
    fn the_error_table_lists_every_code_and_nothing_else() {
        let rows: String = ErrorCode::ALL.iter().map(|c| format!("| `{c}` | x | y |\n")).collect();
        let table = format!("| code | from | cause |\n|---|---|---|\n{rows}\nafter\n");
        assert_eq!(error_code_table(&table), Vec::<String>::new());
        let missing = table.replacen("| `busy` | x | y |\n", "", 1);
        assert_eq!(error_code_table(&missing).len(), 1);
        let extra = table.replacen("\n\nafter", "\n| `janus` | x | y |\n\nafter", 1);
        assert_eq!(error_code_table(&extra).len(), 1);
    }
}
