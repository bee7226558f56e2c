//! The SDP the SFU writes, held to the grammar browsers parse it by
//! (RFC 8866, with the JSEP rules of RFC 8829 and BUNDLE of RFC 9143).
//! Chromium refuses a whole description for one bad line, so a participant
//! would lose its audio over a rejected video line; the tests (and, with
//! the `test-hooks` feature, the SFU itself on every description it emits)
//! check each offer and answer here.
//!
//! This checks structure, not meaning: line order, the fields of each line
//! type, that every `m=` line has a format, that payload types named by
//! attributes are in their `m=` line, one direction per section, unique
//! mids, BUNDLE groups naming live sections, transport attributes where a
//! section is live, simulcast naming declared rids; and, for an answer, that
//! it mirrors its offer's sections.

use std::collections::BTreeSet;
use std::fmt;

/// What is wrong with a description, and on which line (1-based; 0 for the
/// description as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpViolation {
    pub line: usize,
    pub rule: String,
}

impl fmt::Display for SdpViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.rule)
        } else {
            write!(f, "line {}: {}", self.line, self.rule)
        }
    }
}

impl std::error::Error for SdpViolation {}

fn violation(line: usize, rule: impl Into<String>) -> SdpViolation {
    SdpViolation { line, rule: rule.into() }
}

/// One `m=` section as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub port: u32,
    pub proto: String,
    pub formats: Vec<String>,
    pub mid: Option<String>,
    pub direction: Option<String>,
}

impl Section {
    /// Port 0: the section is rejected (or stopped).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }
}

/// A description that passed the grammar: its sections, for the checks of
/// an answer against its offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub sections: Vec<Section>,
    pub bundle: Vec<String>,
}

/// Session-level lines in the order RFC 8866 §5 gives them; `a=` may repeat.
const SESSION_ORDER: &[char] = &['v', 'o', 's', 'i', 'u', 'e', 'p', 'c', 'b', 't', 'r', 'z', 'k', 'a'];
/// Media-level lines in order.
const MEDIA_ORDER: &[char] = &['m', 'i', 'c', 'b', 'k', 'a'];
const DIRECTIONS: &[&str] = &["sendrecv", "sendonly", "recvonly", "inactive"];

/// Checks one description.
// One arm per line type, as the grammar reads; clippy would fold the checks into guards.
#[allow(clippy::collapsible_match)]
pub fn check(sdp: &str) -> Result<Description, SdpViolation> {
    if !sdp.ends_with("\r\n") {
        return Err(violation(0, "a description ends with CRLF"));
    }
    let lines: Vec<&str> = sdp[..sdp.len() - 2].split("\r\n").collect();
    let mut sections: Vec<Section> = Vec::new();
    let mut section_start: Vec<usize> = Vec::new();
    let mut last_order = 0usize;
    let mut session_transport = Transport::default();
    let mut transports: Vec<Transport> = Vec::new();
    let mut bundle: Vec<String> = Vec::new();
    let mut session_direction = false;
    let mut seen_v = false;
    let mut seen_t = false;
    let mut rids: Vec<BTreeSet<String>> = Vec::new();
    let mut simulcast: Vec<(usize, Vec<String>)> = Vec::new();

    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(violation(number, format!("`{line}` is not `<type>=<value>`")));
        }
        if line.contains('\n') || line.contains('\r') || line.contains('\0') {
            return Err(violation(number, "a bare CR, LF or NUL inside a line"));
        }
        let kind = bytes[0] as char;
        let value = &line[2..];
        let in_media = !sections.is_empty();
        // Order: within the session block, then within each media block.
        let order = if kind == 'm' {
            last_order = 0;
            0
        } else {
            let table = if in_media { MEDIA_ORDER } else { SESSION_ORDER };
            match table.iter().position(|&k| k == kind) {
                Some(at) => at,
                None => {
                    let level = if in_media { "a media section" } else { "the session" };
                    return Err(violation(number, format!("`{kind}=` does not belong in {level}")));
                }
            }
        };
        if kind != 'm' {
            let repeatable = matches!(kind, 'a' | 'b' | 'r' | 'e' | 'p') || (in_media && kind == 'c');
            if order < last_order || (order == last_order && !repeatable && index > 0) {
                return Err(violation(number, format!("`{kind}=` is out of order")));
            }
            last_order = order;
        }
        if index == 0 && kind != 'v' {
            return Err(violation(1, "a description starts with `v=`"));
        }
        match kind {
            'v' => {
                if value != "0" {
                    return Err(violation(number, "`v=0` is the only version"));
                }
                seen_v = true;
            }
            'o' => origin(number, value)?,
            's' => {
                if value.is_empty() {
                    return Err(violation(number, "`s=` needs a value (`-` when there is none)"));
                }
            }
            't' => {
                let fields: Vec<&str> = value.split(' ').collect();
                if fields.len() != 2 || fields.iter().any(|f| f.parse::<u64>().is_err()) {
                    return Err(violation(number, "`t=` is two integers"));
                }
                seen_t = true;
            }
            'c' => connection(number, value)?,
            'b' => {
                let ok = value.split_once(':').is_some_and(|(t, v)| token(t) && v.parse::<u64>().is_ok());
                if !ok {
                    return Err(violation(number, "`b=` is `<type>:<integer>`"));
                }
            }
            'm' => {
                if !seen_v || !seen_t {
                    return Err(violation(number, "the session needs `v=`, `o=`, `s=` and `t=` before any `m=`"));
                }
                sections.push(media(number, value)?);
                section_start.push(number);
                transports.push(Transport::default());
                rids.push(BTreeSet::new());
            }
            'a' => {
                let (name, attr) = match value.split_once(':') {
                    Some((name, attr)) => (name, Some(attr)),
                    None => (value, None),
                };
                if !token(name) {
                    return Err(violation(number, format!("`{name}` is not an attribute name")));
                }
                let transport = match transports.last_mut() {
                    Some(t) => t,
                    None => &mut session_transport,
                };
                match (name, attr) {
                    ("ice-ufrag", Some(v)) if !v.is_empty() => transport.ufrag = true,
                    ("ice-pwd", Some(v)) if !v.is_empty() => transport.pwd = true,
                    ("fingerprint", Some(v)) => {
                        let ok = v.split_once(' ').is_some_and(|(hash, print)| {
                            token(hash) && !print.is_empty() && print.split(':').all(|b| b.len() == 2 && hex(b))
                        });
                        if !ok {
                            return Err(violation(number, "`a=fingerprint` is `<hash> <hex:pairs>`"));
                        }
                        transport.fingerprint = true;
                    }
                    ("setup", Some(v)) => {
                        if !matches!(v, "actpass" | "active" | "passive" | "holdconn") {
                            return Err(violation(number, format!("`a=setup:{v}` is not a role")));
                        }
                    }
                    ("ice-ufrag" | "ice-pwd" | "fingerprint" | "setup", _) => {
                        return Err(violation(number, format!("`a={name}` needs a value")));
                    }
                    ("group", Some(v)) => {
                        let mut words = v.split(' ');
                        if words.next() == Some("BUNDLE") {
                            bundle.extend(words.filter(|w| !w.is_empty()).map(str::to_owned));
                        }
                    }
                    ("mid", Some(v)) => {
                        let Some(section) = sections.last_mut() else {
                            return Err(violation(number, "`a=mid` outside a media section"));
                        };
                        if v.is_empty() || section.mid.is_some() {
                            return Err(violation(number, "one non-empty `a=mid` per media section"));
                        }
                        section.mid = Some(v.to_owned());
                    }
                    (d, None) if DIRECTIONS.contains(&d) => match sections.last_mut() {
                        Some(section) => {
                            if section.direction.is_some() {
                                return Err(violation(number, "more than one direction in a media section"));
                            }
                            section.direction = Some(d.to_owned());
                        }
                        None => {
                            if session_direction {
                                return Err(violation(number, "more than one session-level direction"));
                            }
                            session_direction = true;
                        }
                    },
                    ("rtpmap" | "fmtp" | "rtcp-fb", Some(v)) => {
                        let Some(section) = sections.last() else {
                            return Err(violation(number, format!("`a={name}` outside a media section")));
                        };
                        let Some((pt, rest)) = v.split_once(' ') else {
                            return Err(violation(number, format!("`a={name}` is `<payload type> <value>`")));
                        };
                        let known = section.formats.iter().any(|f| f == pt) || (name == "rtcp-fb" && pt == "*");
                        if !known {
                            return Err(violation(
                                number,
                                format!("`a={name}` names {pt}, not a format of its `m=` line"),
                            ));
                        }
                        if name == "rtpmap" && !rtpmap(rest) {
                            return Err(violation(number, "`a=rtpmap` is `<pt> <encoding>/<clock rate>[/<channels>]`"));
                        }
                    }
                    ("rtpmap" | "fmtp" | "rtcp-fb" | "mid" | "group", None) => {
                        return Err(violation(number, format!("`a={name}` needs a value")));
                    }
                    ("rid", Some(v)) => {
                        let Some(set) = rids.last_mut() else {
                            return Err(violation(number, "`a=rid` outside a media section"));
                        };
                        let mut words = v.split(' ');
                        let id = words.next().unwrap_or_default();
                        let direction = words.next().unwrap_or_default();
                        if id.is_empty() || !matches!(direction, "send" | "recv") || !set.insert(id.to_owned()) {
                            return Err(violation(number, "`a=rid` is `<unique id> send|recv [...]`"));
                        }
                    }
                    ("simulcast", Some(v)) => {
                        let named: Vec<String> = v
                            .split(' ')
                            .skip(1)
                            .step_by(2)
                            .flat_map(|list| list.split([';', ',']))
                            .map(|rid| rid.trim_start_matches('~').to_owned())
                            .filter(|rid| !rid.is_empty())
                            .collect();
                        simulcast.push((number, named));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        // Simulcast names are checked against the rids of their own section
        // once it ends (a rid may follow the simulcast line).
        let section_ends = lines.get(index + 1).is_none_or(|next| next.starts_with("m="));
        if section_ends && !sections.is_empty() {
            let declared = rids.last().expect("a section's rids");
            for (at, named) in simulcast.drain(..) {
                if let Some(rid) = named.iter().find(|rid| !declared.contains(*rid)) {
                    return Err(violation(at, format!("`a=simulcast` names rid `{rid}`, which no `a=rid` declares")));
                }
            }
        }
    }
    if !seen_v || !seen_t || !lines.iter().any(|l| l.starts_with("o=")) || !lines.iter().any(|l| l.starts_with("s=")) {
        return Err(violation(0, "a description has `v=`, `o=`, `s=` and `t=`"));
    }

    let mut mids = BTreeSet::new();
    for (section, &start) in sections.iter().zip(&section_start) {
        if let Some(mid) = &section.mid {
            if !mids.insert(mid.clone()) {
                return Err(violation(start, format!("two media sections have the mid `{mid}`")));
            }
        } else if !section.is_rejected() {
            return Err(violation(start, "a live media section has an `a=mid`"));
        }
    }
    for mid in &bundle {
        let live = sections.iter().any(|s| s.mid.as_deref() == Some(mid) && !s.is_rejected());
        if !live {
            return Err(violation(0, format!("the BUNDLE group names `{mid}`, which is not a live section")));
        }
    }
    for ((section, transport), &start) in sections.iter().zip(&transports).zip(&section_start) {
        if section.is_rejected() {
            continue;
        }
        // A bundled section may take its transport from the session level
        // or from the bundle's first section.
        let bundled = section.mid.as_ref().is_some_and(|m| bundle.contains(m));
        let have =
            |f: fn(&Transport) -> bool| f(transport) || f(&session_transport) || (bundled && transports.iter().any(f));
        if !have(|t| t.ufrag) || !have(|t| t.pwd) || !have(|t| t.fingerprint) {
            return Err(violation(start, "a live section has `a=ice-ufrag`, `a=ice-pwd` and `a=fingerprint`"));
        }
    }
    Ok(Description { sections, bundle })
}

/// Checks an answer on its own and against the offer it answers: the same
/// sections in the same order, of the same kinds and mids; a section the
/// offer rejected stays rejected; directions that fit the offer's.
pub fn check_answer(offer: &str, answer: &str) -> Result<(), SdpViolation> {
    let offer = check(offer).map_err(|v| violation(0, format!("the offer: {v}")))?;
    let answer = check(answer)?;
    if offer.sections.len() != answer.sections.len() {
        return Err(violation(
            0,
            format!("the offer has {} media sections, the answer {}", offer.sections.len(), answer.sections.len()),
        ));
    }
    for (i, (o, a)) in offer.sections.iter().zip(&answer.sections).enumerate() {
        if o.kind != a.kind || o.mid != a.mid {
            return Err(violation(
                0,
                format!(
                    "media section {i} is {:?} {:?} in the offer, {:?} {:?} in the answer",
                    o.kind, o.mid, a.kind, a.mid
                ),
            ));
        }
        if o.is_rejected() && !a.is_rejected() {
            return Err(violation(
                0,
                format!("media section {i} was rejected by the offer and accepted by the answer"),
            ));
        }
        let offered = o.direction.as_deref().unwrap_or("sendrecv");
        let answered = a.direction.as_deref().unwrap_or("sendrecv");
        let fits = match offered {
            "sendrecv" => true,
            "sendonly" => matches!(answered, "recvonly" | "inactive"),
            "recvonly" => matches!(answered, "sendonly" | "inactive"),
            _ => answered == "inactive",
        };
        if !fits && !a.is_rejected() {
            return Err(violation(0, format!("media section {i}: `{answered}` does not answer `{offered}`")));
        }
    }
    if answer.bundle.iter().any(|m| !offer.bundle.contains(m)) {
        return Err(violation(0, "the answer bundles a section the offer did not"));
    }
    Ok(())
}

/// Panics when the SFU's own offer breaks the grammar: with the
/// `test-hooks` feature every test that negotiates checks what it got.
#[cfg(feature = "test-hooks")]
pub(crate) fn assert_offer_is_valid(offer: &str) {
    if let Err(violation) = check(offer) {
        panic!("the SFU wrote an invalid SDP offer ({violation}):\n{offer}");
    }
}

/// Panics when the SFU's answer breaks the grammar, or does not mirror an
/// offer that kept it (a hostile offer is the sender's problem; the answer
/// must be valid all the same).
#[cfg(feature = "test-hooks")]
pub(crate) fn assert_answer_is_valid(offer: &str, answer: &str) {
    let verdict = if check(offer).is_ok() { check_answer(offer, answer) } else { check(answer).map(drop) };
    if let Err(violation) = verdict {
        panic!("the SFU wrote an invalid SDP answer ({violation}):\noffer:\n{offer}\nanswer:\n{answer}");
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Transport {
    ufrag: bool,
    pwd: bool,
    fingerprint: bool,
}

fn origin(number: usize, value: &str) -> Result<(), SdpViolation> {
    let fields: Vec<&str> = value.split(' ').collect();
    let ok = fields.len() == 6
        && !fields[0].is_empty()
        && fields[1].parse::<u64>().is_ok()
        && fields[2].parse::<u64>().is_ok()
        && fields[3] == "IN"
        && matches!(fields[4], "IP4" | "IP6")
        && !fields[5].is_empty();
    if ok {
        Ok(())
    } else {
        Err(violation(number, "`o=` is `<username> <sess-id> <sess-version> IN IP4|IP6 <address>`"))
    }
}

fn connection(number: usize, value: &str) -> Result<(), SdpViolation> {
    let fields: Vec<&str> = value.split(' ').collect();
    let ok = fields.len() == 3 && fields[0] == "IN" && matches!(fields[1], "IP4" | "IP6") && !fields[2].is_empty();
    if ok {
        Ok(())
    } else {
        Err(violation(number, "`c=` is `IN IP4|IP6 <address>`"))
    }
}

fn media(number: usize, value: &str) -> Result<Section, SdpViolation> {
    let fields: Vec<&str> = value.split(' ').collect();
    if fields.len() < 4 || fields[3..].iter().any(|f| f.is_empty()) {
        // RFC 8866 §5.14: `m=<media> <port> <proto> 1*(SP <fmt>)`, even
        // for a rejected section.
        return Err(violation(number, "`m=` is `<media> <port> <proto> <fmt> ...`, with at least one format"));
    }
    if !token(fields[0]) {
        return Err(violation(number, format!("`{}` is not a media type", fields[0])));
    }
    let port = fields[1].split('/').next().and_then(|p| p.parse::<u32>().ok()).filter(|p| *p <= 65535);
    let Some(port) = port else {
        return Err(violation(number, format!("`{}` is not a port", fields[1])));
    };
    let proto = fields[2];
    if proto.is_empty() || !proto.split('/').all(token) {
        return Err(violation(number, format!("`{proto}` is not a transport protocol")));
    }
    let formats: Vec<String> = fields[3..].iter().map(|f| (*f).to_owned()).collect();
    if proto.contains("RTP/") && formats.iter().any(|f| f.parse::<u8>().map_or(true, |pt| pt > 127)) {
        return Err(violation(number, "an RTP `m=` line lists payload types 0–127"));
    }
    Ok(Section { kind: fields[0].to_owned(), port, proto: proto.to_owned(), formats, mid: None, direction: None })
}

fn rtpmap(value: &str) -> bool {
    let parts: Vec<&str> = value.split('/').collect();
    (2..=3).contains(&parts.len())
        && !parts[0].is_empty()
        && !parts[0].contains(' ')
        && parts[1].parse::<u32>().is_ok()
        && parts.get(2).is_none_or(|c| c.parse::<u32>().is_ok())
}

/// RFC 8866's `token`: visible ASCII but the separators it excludes.
fn token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
}

fn hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Chromium-shaped offer: audio, video with simulcast, a data-less
    /// bundle.
    fn offer() -> String {
        [
            "v=0",
            "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0 1",
            "a=msid-semantic: WMS",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "c=IN IP4 0.0.0.0",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuv",
            "a=fingerprint:sha-256 AB:CD:EF",
            "a=setup:actpass",
            "a=mid:0",
            "a=sendrecv",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
            "c=IN IP4 0.0.0.0",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuv",
            "a=fingerprint:sha-256 AB:CD:EF",
            "a=setup:actpass",
            "a=mid:1",
            "a=sendonly",
            "a=rtpmap:96 VP8/90000",
            "a=rtcp-fb:96 nack pli",
            "a=rtpmap:97 rtx/90000",
            "a=fmtp:97 apt=96",
            "a=rid:q send",
            "a=rid:h send",
            "a=simulcast:send q;h",
            "",
        ]
        .join("\r\n")
    }

    fn answer() -> String {
        offer()
            .replace("a=setup:actpass", "a=setup:passive")
            .replace("a=sendonly", "a=recvonly")
            .replace("a=rid:q send", "a=rid:q recv")
            .replace("a=rid:h send", "a=rid:h recv")
            .replace("a=simulcast:send q;h", "a=simulcast:recv q;h")
    }

    #[test]
    fn a_well_formed_offer_and_answer_pass() {
        let description = check(&offer()).unwrap();
        assert_eq!(description.sections.len(), 2);
        assert_eq!(description.bundle, ["0", "1"]);
        check_answer(&offer(), &answer()).unwrap();
    }

    /// The line older str0m wrote for a rejected section: no format.
    #[test]
    fn a_rejected_section_without_a_format_is_refused() {
        let bad = answer().replace("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 0 UDP/TLS/RTP/SAVPF ");
        let err = check(&bad).unwrap_err();
        assert!(err.rule.contains("at least one format"), "{err}");
        let good = answer()
            .replace("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 0 UDP/TLS/RTP/SAVPF 0")
            .replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0");
        let good: String = good
            .split("\r\n")
            .filter(|l| !l.starts_with("a=rtpmap:9") && !l.starts_with("a=rtcp-fb") && !l.starts_with("a=fmtp:97"))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .trim_end_matches("\r\n")
            .to_owned()
            + "\r\n";
        check(&good).unwrap();
    }

    #[test]
    fn each_rule_catches_its_fault() {
        let cases: &[(&str, &str, &str)] = &[
            ("v=0", "v=1", "version"),
            ("o=- 4611731400430051336 2 IN IP4 127.0.0.1", "o=- x 2 IN IP4 127.0.0.1", "`o=`"),
            ("s=-", "s=", "`s=`"),
            ("t=0 0", "t=0", "`t=`"),
            ("a=mid:1", "a=mid:0", "mid `0`"),
            ("a=sendonly", "a=sendonly\r\na=inactive", "direction"),
            ("a=rtpmap:96 VP8/90000", "a=rtpmap:98 VP8/90000", "not a format"),
            ("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8", "rtpmap"),
            ("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2", "BUNDLE"),
            ("a=rid:h send", "a=rid:x send", "rid `h`"),
            ("a=fingerprint:sha-256 AB:CD:EF", "a=fingerprint:sha-256 ABCDEF", "fingerprint"),
            ("a=setup:actpass", "a=setup:maybe", "role"),
            ("c=IN IP4 0.0.0.0", "c=IN IP9 0.0.0.0", "`c=`"),
            ("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 70000 UDP/TLS/RTP/SAVPF 111", "port"),
            ("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 UDP/TLS/RTP/SAVPF 300", "0–127"),
            ("s=-", "s=-\r\nx=what", "does not belong"),
            ("t=0 0", "t=0 0\r\ns=again", "out of order"),
        ];
        for (from, to, expect) in cases {
            let bad = offer().replacen(from, to, 1);
            let err = check(&bad).expect_err(&format!("{to} passed"));
            assert!(err.to_string().contains(expect), "{to}: {err}");
        }
        assert!(check(offer().trim_end()).is_err(), "no final CRLF");
        let no_ice: String = offer().replace("a=ice-pwd:abcdefghijklmnopqrstuv\r\n", "");
        assert!(check(&no_ice).unwrap_err().rule.contains("ice-pwd"));
    }

    #[test]
    fn an_answer_mirrors_its_offer() {
        let reordered = answer().replace("a=mid:0", "a=mid:X").replace("a=group:BUNDLE 0 1", "a=group:BUNDLE X 1");
        assert!(check_answer(&offer(), &reordered).unwrap_err().rule.contains("media section 0"));
        let sending_back = answer().replace("a=recvonly", "a=sendonly");
        assert!(check_answer(&offer(), &sending_back).unwrap_err().rule.contains("does not answer"));
        let missing: String = {
            let text = answer();
            let cut = text.find("m=video").unwrap();
            text[..cut].replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0")
        };
        assert!(check_answer(&offer(), &missing).unwrap_err().rule.contains("2 media sections"));
    }
}
