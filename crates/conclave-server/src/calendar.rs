//! Meeting invitations as iCalendar (RFC 5545) with iTIP methods (RFC
//! 5546): `REQUEST` when a meeting is scheduled or changes (each change a
//! higher `SEQUENCE`, so calendars replace the earlier one), `CANCEL` when
//! it is deleted or someone is no longer invited. Times are UTC, which
//! every calendar shows in its reader's own zone. Lines are folded at 75
//! octets and text is escaped, as the RFC asks.

use crate::clock::UtcTime;

/// What an invitation asks of the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Add or update the event.
    Request,
    /// Remove it.
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "REQUEST",
            Self::Cancel => "CANCEL",
        }
    }
}

/// A meeting as its calendar event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Stable across updates: the meeting's id and the server's host.
    pub uid: String,
    pub sequence: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub stamp_ms: i64,
    pub title: &'a str,
    pub description: &'a str,
    /// Where to join; empty: not said (a cancellation).
    pub url: &'a str,
    pub organizer_name: &'a str,
    pub organizer_email: &'a str,
    pub attendees: &'a [String],
}

fn utc(ms: i64) -> String {
    let t = UtcTime::from_ms(ms);
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// TEXT values (RFC 5545 §3.3.11): backslash, semicolon, comma and line
/// breaks escaped; other control characters dropped.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value (a name in `CN=`): quoted, without quotes or controls.
fn param(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    format!("\"{clean}\"")
}

/// Folds a content line at 75 octets, never inside a character.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// The invitation's iCalendar object.
pub fn invitation(event: &Event<'_>, method: Method) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "PRODID:-//Conclave//Meetings//EN".to_owned(),
        "VERSION:2.0".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        format!("METHOD:{}", method.as_str()),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}", text(&event.uid)),
        format!("SEQUENCE:{}", event.sequence),
        format!("DTSTAMP:{}", utc(event.stamp_ms)),
        format!("DTSTART:{}", utc(event.start_ms)),
        format!("DTEND:{}", utc(event.end_ms)),
        format!("SUMMARY:{}", text(event.title)),
        format!("DESCRIPTION:{}", text(event.description)),
    ];
    if !event.url.is_empty() {
        lines.push(format!("LOCATION:{}", text(event.url)));
        lines.push(format!("URL:{}", event.url));
    }
    lines.push(format!("ORGANIZER;CN={}:mailto:{}", param(event.organizer_name), event.organizer_email));
    for attendee in event.attendees {
        let reply = if method == Method::Request { ";RSVP=TRUE;PARTSTAT=NEEDS-ACTION" } else { "" };
        lines.push(format!("ATTENDEE;ROLE=REQ-PARTICIPANT{reply}:mailto:{attendee}"));
    }
    lines.push(format!("STATUS:{}", if method == Method::Cancel { "CANCELLED" } else { "CONFIRMED" }));
    lines.push("END:VEVENT".to_owned());
    lines.push("END:VCALENDAR".to_owned());
    let mut out = String::new();
    for line in &lines {
        fold(line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(attendees: &[String]) -> Event<'_> {
        Event {
            uid: "m1@meet.example.org".into(),
            sequence: 2,
            start_ms: 1_796_306_400_000,
            end_ms: 1_796_310_000_000,
            stamp_ms: 1_796_300_000_000,
            title: "Q4 review; budget, plans",
            description: "Join: https://meet.example.org/j/abc\nCode: 123 456 7890",
            url: "https://meet.example.org/j/abc",
            organizer_name: "Ada \"the\" Host",
            organizer_email: "ada@example.org",
            attendees,
        }
    }

    #[test]
    fn an_invitation_is_valid_icalendar_with_utc_times() {
        let attendees = vec!["grace@example.org".to_owned()];
        let ics = invitation(&event(&attendees), Method::Request);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
        assert!(ics.contains("METHOD:REQUEST\r\n"));
        assert!(ics.contains("DTSTART:20261203T140000Z\r\n"), "{ics}");
        assert!(ics.contains("DTEND:20261203T150000Z\r\n"));
        assert!(ics.contains("SEQUENCE:2\r\n"));
        assert!(ics.contains("SUMMARY:Q4 review\\; budget\\, plans\r\n"));
        assert!(ics.contains("ORGANIZER;CN=\"Ada the Host\":mailto:ada@example.org"));
        let unfolded = ics.replace("\r\n ", "");
        assert!(
            unfolded.contains("ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=TRUE;PARTSTAT=NEEDS-ACTION:mailto:grace@example.org")
        );
        assert!(ics.contains("STATUS:CONFIRMED"));
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "folded: {line:?}");
        }
        let cancel = invitation(&event(&attendees), Method::Cancel);
        assert!(cancel.contains("METHOD:CANCEL\r\n") && cancel.contains("STATUS:CANCELLED"));
        assert!(!cancel.contains("RSVP"));
    }

    #[test]
    fn long_lines_fold_between_characters() {
        let mut out = String::new();
        let line = format!("SUMMARY:{}", "é".repeat(60));
        fold(&line, &mut out);
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("{line}\r\n"));
        assert!(out.split("\r\n").all(|l| l.len() <= 75));
        assert!(String::from_utf8(out.into_bytes()).is_ok());
    }
}
