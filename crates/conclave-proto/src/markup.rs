//! The text of a message: a small Markdown subset every Conclave client
//! renders alike, and mentions. It travels inside the encryption; the
//! server never parses it.
//!
//! The subset (CommonMark's syntax, nothing else rendered): `*emphasis*`,
//! `**strong**`, `~~strikethrough~~`, `` `code` ``, fenced code blocks,
//! `> quotes`, lists (`- item`, `1. item`), and links, either bare
//! (`https://…`) or `[text](https://…)`, for `https`, `http` and `mailto`
//! only. No raw HTML, images, headings or tables: what a message shows is
//! text, never markup from someone else's device. Everything outside the
//! subset shows as typed.
//!
//! A mention is `@[Display Name](user:<account id>)`: clients show it as
//! `@Display Name`, and a message lists the accounts it mentions in its
//! payload's `mentions` (what notifications and mention badges use), so a
//! receiving device does not have to parse text to know it was meant.

/// The most mentions one message lists; more are not notified.
pub const MAX_MENTIONS: usize = 50;

/// The accounts a text mentions, in order of first mention, each once.
pub fn mentions(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("@[") {
        rest = &rest[at + 2..];
        // The name runs to the first `](user:`; a name holds no `]`.
        let Some(close) = rest.find(']') else { break };
        let after = &rest[close + 1..];
        let Some(target) = after.strip_prefix("(user:") else { continue };
        let Some(end) = target.find(')') else { break };
        let id = &target[..end];
        let valid = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid && !found.iter().any(|f| f == id) && found.len() < MAX_MENTIONS {
            found.push(id.to_owned());
        }
        rest = &target[end + 1..];
    }
    found
}

/// How a mention of `user_id` is written in a message's text.
pub fn mention(display_name: &str, user_id: &str) -> String {
    let name: String = display_name.chars().filter(|c| !matches!(c, '[' | ']')).collect();
    format!("@[{name}](user:{user_id})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found_once_each_and_in_order() {
        let grace = "4f2c-9a";
        let text = format!(
            "{} and {} — thanks {}",
            mention("Grace", grace),
            mention("Ada [CEO]", "ada-1"),
            mention("Grace", grace)
        );
        assert_eq!(mentions(&text), [grace, "ada-1"]);
        assert_eq!(mention("Ada [CEO]", "ada-1"), "@[Ada CEO](user:ada-1)");
    }

    #[test]
    fn what_is_not_a_mention_is_text() {
        for text in [
            "mail me at ada@example.com",
            "@[Grace](https://example.com)",
            "@[Grace](user:)",
            "@[Grace](user:has space)",
            "@[Grace](user:x\")",
            "@[unclosed",
            "@[Grace](user:abc",
            "[Grace](user:abc)",
        ] {
            assert!(mentions(text).is_empty(), "{text}");
        }
        let many: String = (0..100).map(|i| mention("P", &format!("u{i}"))).collect();
        assert_eq!(mentions(&many).len(), MAX_MENTIONS);
    }
}
