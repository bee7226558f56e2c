//! Public posts, for the at-risk meeting notifier (S4): a source an
//! organisation watches (an RSS or Atom feed, a JSON Feed, a Mastodon
//! public or hashtag timeline) parsed into [`Post`]s, and the references to
//! this server's meetings in them ([`references`]): invite links, and
//! meeting codes typed out.
//!
//! Everything here reads what strangers wrote, so it is bounded: documents
//! over [`MAX_FEED_BYTES`], more than [`MAX_POSTS`] posts or nesting deeper
//! than [`MAX_DEPTH`] are refused or cut, and XML entities beyond the five
//! predefined ones and character references are never expanded (a
//! "billion laughs" document stays its own size).

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

pub const MAX_FEED_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_POSTS: usize = 500;
pub const MAX_DEPTH: usize = 64;
/// The text kept of one post.
const MAX_POST_TEXT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Where the post is, when the source says.
    pub url: Option<String>,
    /// Its words and links, markup left in (links are found in attributes too).
    pub text: String,
    /// Whether anyone can see it (a Mastodon post may be followers-only).
    pub public: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the document is larger than {MAX_FEED_BYTES} bytes")]
    TooLarge,
    #[error("the document nests deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("not a feed: {0}")]
    Malformed(String),
}

/// The posts of a source's document, whichever of the formats it is.
pub fn parse(body: &[u8]) -> Result<Vec<Post>, FeedError> {
    if body.len() > MAX_FEED_BYTES {
        return Err(FeedError::TooLarge);
    }
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    match body.get(start) {
        Some(b'{') | Some(b'[') => parse_json(&body[start..]),
        Some(b'<') => parse_xml(&body[start..]),
        _ => Err(FeedError::Malformed("neither XML nor JSON".into())),
    }
}

fn parse_json(body: &[u8]) -> Result<Vec<Post>, FeedError> {
    // serde_json refuses nesting past 128 levels itself.
    let value: Value = serde_json::from_slice(body).map_err(|e| FeedError::Malformed(e.to_string()))?;
    let text_of = |v: &Value, keys: &[&str]| -> String {
        keys.iter().filter_map(|k| v.get(*k).and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
    };
    let posts: Vec<Post> = match &value {
        // A Mastodon timeline: statuses, with their visibility.
        Value::Array(statuses) => statuses
            .iter()
            .take(MAX_POSTS)
            .map(|s| Post {
                url: s.get("url").and_then(Value::as_str).map(str::to_owned),
                text: {
                    let mut text = text_of(s, &["spoiler_text", "content"]);
                    if let Some(card) = s.get("card") {
                        text.push('\n');
                        text.push_str(&text_of(card, &["url", "title", "description"]));
                    }
                    text
                },
                public: matches!(s.get("visibility").and_then(Value::as_str), Some("public") | Some("unlisted") | None),
            })
            .collect(),
        // A JSON Feed (jsonfeed.org).
        Value::Object(feed) if feed.contains_key("items") => feed["items"]
            .as_array()
            .ok_or_else(|| FeedError::Malformed("items is not an array".into()))?
            .iter()
            .take(MAX_POSTS)
            .map(|item| Post {
                url: item.get("url").and_then(Value::as_str).map(str::to_owned),
                text: text_of(item, &["title", "summary", "content_text", "content_html", "external_url"]),
                public: true,
            })
            .collect(),
        _ => return Err(FeedError::Malformed("JSON that is neither a JSON Feed nor a timeline".into())),
    };
    Ok(posts.into_iter().map(bounded).collect())
}

fn bounded(mut post: Post) -> Post {
    if post.text.len() > MAX_POST_TEXT {
        let mut cut = MAX_POST_TEXT;
        while !post.text.is_char_boundary(cut) {
            cut -= 1;
        }
        post.text.truncate(cut);
    }
    post
}

/// RSS 2.0 `<item>`s and Atom `<entry>`s: everything written inside one
/// is its text; its `<link>` (RSS: the element's text; Atom: `href`) is
/// its address.
fn parse_xml(body: &[u8]) -> Result<Vec<Post>, FeedError> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut posts = Vec::new();
    let mut current: Option<Post> = None;
    let mut in_link = false;
    let mut seen_root = false;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| FeedError::Malformed(e.to_string()))?;
        match event {
            Event::Start(start) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FeedError::TooDeep);
                }
                seen_root = true;
                let name = start.local_name();
                let name = name.as_ref();
                if name == b"item" || name == b"entry" {
                    current = Some(Post { url: None, text: String::new(), public: true });
                } else if name == b"link" {
                    in_link = true;
                    if let Some(post) = current.as_mut() {
                        take_href(&start, post);
                    }
                }
            }
            Event::Empty(empty) => {
                seen_root = true;
                if empty.local_name().as_ref() == b"link" {
                    if let Some(post) = current.as_mut() {
                        take_href(&empty, post);
                    }
                }
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                let name = end.local_name();
                if name.as_ref() == b"link" {
                    in_link = false;
                }
                if name.as_ref() == b"item" || name.as_ref() == b"entry" {
                    if let Some(post) = current.take() {
                        posts.push(bounded(post));
                        if posts.len() >= MAX_POSTS {
                            break;
                        }
                    }
                }
            }
            Event::Text(text) => {
                let text = text.decode().map_err(|e| FeedError::Malformed(e.to_string()))?;
                add_text(current.as_mut(), &text, in_link);
            }
            Event::CData(data) => {
                let text = data.decode().map_err(|e| FeedError::Malformed(e.to_string()))?;
                add_text(current.as_mut(), &text, in_link);
            }
            Event::GeneralRef(reference) => {
                // Character references and the five predefined entities;
                // anything a DOCTYPE declared is left out, never expanded.
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => match reference.decode().ok().as_deref() {
                        Some("lt") => Some("<".into()),
                        Some("gt") => Some(">".into()),
                        Some("amp") => Some("&".into()),
                        Some("quot") => Some("\"".into()),
                        Some("apos") => Some("'".into()),
                        _ => None,
                    },
                };
                if let Some(text) = resolved {
                    add_text(current.as_mut(), &text, in_link);
                }
            }
            Event::Eof if depth > 0 => return Err(FeedError::Malformed("the document ends inside an element".into())),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(FeedError::Malformed("no elements".into()));
    }
    Ok(posts)
}

fn take_href(element: &quick_xml::events::BytesStart<'_>, post: &mut Post) {
    if let Ok(Some(href)) = element.try_get_attribute("href") {
        if let Ok(value) = href.unescape_value() {
            post.text.push('\n');
            post.text.push_str(&value);
            post.url.get_or_insert_with(|| value.into_owned());
        }
    }
}

fn add_text(post: Option<&mut Post>, text: &str, in_link: bool) {
    let Some(post) = post else { return };
    if post.text.len() > MAX_POST_TEXT {
        return;
    }
    if in_link && post.url.is_none() {
        post.url = Some(text.trim().to_owned());
    }
    post.text.push_str(text);
}

/// A reference to one of this server's meetings in a post.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    /// An invite link's secret.
    Link(String),
    /// A meeting code typed out (its ten digits).
    Code(String),
}

/// The meetings of the server at `public_url` that `text` refers to: its
/// invite links (`{public_url}/j/{secret}`, with or without the scheme),
/// and ten-digit codes written as the server shows them (`123 456 7890`)
/// or run together. Each at most once, in order.
pub fn references(text: &str, public_url: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let host_and_path = public_url.trim_end_matches('/').split_once("://").map_or(public_url, |(_, rest)| rest);
    let marker = format!("{host_and_path}/j/");
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&marker.to_ascii_lowercase()) {
        let start = from + at + marker.len();
        let secret: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if secret.len() >= 16 {
            push_once(&mut found, &mut seen, Reference::Link(secret));
        }
        from = start;
    }
    for code in codes(text) {
        push_once(&mut found, &mut seen, Reference::Code(code));
    }
    found
}

fn push_once(found: &mut Vec<Reference>, seen: &mut std::collections::HashSet<Reference>, reference: Reference) {
    if seen.insert(reference.clone()) {
        found.push(reference);
    }
}

/// Runs of exactly ten digits, allowing single spaces or dashes between
/// them (and nothing digit-like around them).
fn codes(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut j = i;
        while j < chars.len() && digits.len() <= 10 {
            if chars[j].is_ascii_digit() {
                digits.push(chars[j]);
                j += 1;
            } else if matches!(chars[j], ' ' | '-') && j + 1 < chars.len() && chars[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        if digits.len() == 10 && !chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
            found.push(digits);
        }
        i = j.max(i + 1);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "https://meet.example.org";

    #[test]
    fn rss_atom_json_feed_and_mastodon_posts_are_read() {
        let rss = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
            <item><title>Join us</title><link>https://blog.example/p/1</link>
            <description>&lt;a href="https://meet.example.org/j/abcdefghijklmnopqrstuvwxyz012345"&gt;party&lt;/a&gt;</description></item>
            <item><title>Other</title><description><![CDATA[code 123 456 7890 &amp; more]]></description></item>
            </channel></rss>"#;
        let posts = parse(rss).unwrap();
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[0].url.as_deref(), Some("https://blog.example/p/1"));
        assert!(posts[0].text.contains("https://meet.example.org/j/abcdefghijklmnopqrstuvwxyz012345"));
        assert!(posts[1].text.contains("123 456 7890"));

        let atom = br#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>T</title>
            <link href="https://blog.example/e/2"/><content type="html">see meet.example.org/j/ZZZZZZZZZZZZZZZZZZZZ</content></entry></feed>"#;
        let posts = parse(atom).unwrap();
        assert_eq!(posts[0].url.as_deref(), Some("https://blog.example/e/2"));
        assert_eq!(references(&posts[0].text, SERVER), [Reference::Link("ZZZZZZZZZZZZZZZZZZZZ".into())]);

        let json_feed = br#"{"version":"https://jsonfeed.org/version/1.1","items":[{"id":"1","url":"https://x.example/1","content_text":"hi"}]}"#;
        assert_eq!(parse(json_feed).unwrap()[0].url.as_deref(), Some("https://x.example/1"));

        let mastodon = br#"[{"url":"https://social.example/@a/1","visibility":"public","content":"<p>join <a href=\"https://meet.example.org/j/abcdefghijklmnopqr\">here</a></p>"},
                            {"url":"https://social.example/@a/2","visibility":"private","content":"psst"}]"#;
        let posts = parse(mastodon).unwrap();
        assert!(posts[0].public && !posts[1].public);
        assert_eq!(references(&posts[0].text, SERVER), [Reference::Link("abcdefghijklmnopqr".into())]);
    }

    #[test]
    fn references_are_this_servers_links_and_ten_digit_codes() {
        let text = "https://meet.example.org/j/abcdefghijklmnopqrstuvwx and again \
                    HTTPS://MEET.EXAMPLE.ORG/j/abcdefghijklmnopqrstuvwx, code 482-913-0571, \
                    also 4829130571; not https://other.example/j/abcdefghijklmnopqrstuvwx, \
                    not 12345678901 nor 123 456 789, nor meet.example.org/j/short";
        assert_eq!(
            references(text, SERVER),
            [Reference::Link("abcdefghijklmnopqrstuvwx".into()), Reference::Code("4829130571".into())]
        );
    }

    #[test]
    fn hostile_documents_are_refused_or_stay_small() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
            <rss><channel><item><title>&lol3;&lol3;</title></item></channel></rss>"#;
        let posts = parse(laughs).unwrap();
        assert!(posts[0].text.len() < 100, "entities are not expanded: {}", posts[0].text.len());
        let external = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><rss><channel><item><title>&xxe;</title></item></channel></rss>"#;
        assert!(!parse(external).unwrap()[0].text.contains("root:"));
        assert_eq!(parse(&vec![b' '; MAX_FEED_BYTES + 1]), Err(FeedError::TooLarge));
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()), Err(FeedError::TooDeep));
        let many = format!("<rss><channel>{}</channel></rss>", "<item><title>x</title></item>".repeat(MAX_POSTS + 50));
        assert_eq!(parse(many.as_bytes()).unwrap().len(), MAX_POSTS);
        for bad in [&b"hello"[..], b"<rss><item>", b"{\"no\":1}", b"", b"<"] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn any_text_yields_references_without_panicking(text in "\\PC{0,200}") {
            for reference in references(&text, SERVER) {
                if let Reference::Code(code) = reference {
                    proptest::prop_assert_eq!(code.len(), 10);
                }
            }
        }
    }
}
