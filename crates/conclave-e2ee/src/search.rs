//! Search over what this device has read, on the device: the server holds
//! only ciphertext, so it cannot search, and asking it would tell it what
//! the person looks for. The index is the device's own history (kept sealed
//! at rest with the rest of the device's state); a query is answered from
//! memory without a request.
//!
//! Matching is by words, as people expect of Slack or Element: every word
//! of the query must begin a word of the message (so `launch` finds
//! "launching"), case and accents aside. A message is found by its latest
//! edit; reactions and messages between devices are not searched.

use crate::conversations::HeldMessage;
use conclave_proto::conversation::{Reference, Seq};
pub use conclave_proto::held::Found;
use std::collections::HashMap;

/// Most results one query returns.
pub const MAX_RESULTS: usize = 50;
/// Longest query taken, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// The words of `text`, lowercased, with accents folded away for the
/// letters most often typed without them.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().flat_map(char::to_lowercase).map(fold_accent).collect())
        .collect()
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

/// The messages of every conversation in `held` that match `query`,
/// newest first, at most [`MAX_RESULTS`]. An empty query finds nothing.
pub fn search<'a>(held: impl IntoIterator<Item = (&'a str, &'a [HeldMessage])>, query: &str) -> Vec<Found> {
    let query: String = query.chars().take(MAX_QUERY_CHARS).collect();
    let wanted = words(&query);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (conversation_id, messages) in held {
        // Edits replace their target's text, in the order they came.
        let mut latest: HashMap<Seq, &str> = HashMap::new();
        for m in messages {
            if let Some(Reference::Edit(target)) = m.reference {
                let author = messages.iter().find(|t| t.seq == target).map(|t| t.from_user.as_str());
                if author == Some(m.from_user.as_str()) {
                    latest.insert(target, &m.text);
                }
            }
        }
        for m in messages {
            if matches!(m.reference, Some(Reference::Edit(_) | Reference::Reaction(_))) {
                continue;
            }
            let text = latest.get(&m.seq).copied().unwrap_or(&m.text);
            let have = words(text);
            if wanted.iter().all(|w| have.iter().any(|h| h.starts_with(w.as_str()))) {
                found.push(Found {
                    conversation_id: conversation_id.to_owned(),
                    seq: m.seq,
                    at_ms: m.at_ms,
                    from_user: m.from_user.clone(),
                    text: text.to_owned(),
                    thread: match m.reference {
                        Some(Reference::Thread(root)) => Some(root),
                        _ => None,
                    },
                });
            }
        }
    }
    found.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then(b.seq.cmp(&a.seq)));
    found.truncate(MAX_RESULTS);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(seq: Seq, from: &str, text: &str, reference: Option<Reference>) -> HeldMessage {
        HeldMessage {
            seq,
            at_ms: seq as i64 * 1000,
            from_user: from.into(),
            text: text.into(),
            file: None,
            mentions: Vec::new(),
            reference,
        }
    }

    fn seqs(found: &[Found]) -> Vec<(&str, Seq)> {
        found.iter().map(|f| (f.conversation_id.as_str(), f.seq)).collect()
    }

    #[test]
    fn every_word_must_begin_a_word_of_the_message_whatever_its_case_or_accents() {
        let general = vec![
            held(1, "ada", "Launching on Friday, café at noon", None),
            held(2, "bob", "the launch is postponed", None),
            held(3, "ada", "relaunch nothing", None),
        ];
        // Sent between the channel's first and second messages.
        let dm = vec![HeldMessage { at_ms: 1500, ..held(1, "bob", "LAUNCH notes are on the wiki", None) }];
        let all = || [("general", general.as_slice()), ("dm", dm.as_slice())];
        assert_eq!(seqs(&search(all(), "launch")), [("general", 2), ("dm", 1), ("general", 1)], "newest first");
        assert_eq!(seqs(&search(all(), "Cafe FRI")), [("general", 1)]);
        assert_eq!(seqs(&search(all(), "launch wiki")), [("dm", 1)]);
        assert!(search(all(), "aunch").is_empty(), "a word's middle is not a match");
        assert!(search(all(), "  ,; ").is_empty(), "nothing asked, nothing found");
    }

    #[test]
    fn a_message_is_found_by_its_latest_edit_and_reactions_are_not_searched() {
        let general = vec![
            held(1, "ada", "the notes are in the usual place", None),
            held(2, "bob", "usual", Some(Reference::Reaction(1))),
            held(3, "ada", "the notes are on the wiki", Some(Reference::Edit(1))),
            // Only its author edits a message.
            held(4, "bob", "hijacked", Some(Reference::Edit(1))),
            held(5, "bob", "which wiki page?", Some(Reference::Thread(1))),
        ];
        let all = || [("general", general.as_slice())];
        assert!(search(all(), "usual").is_empty(), "the old text is gone, and a reaction is no message");
        assert!(search(all(), "hijacked").is_empty());
        let found = search(all(), "wiki");
        assert_eq!(seqs(&found), [("general", 5), ("general", 1)]);
        assert_eq!(found[1].text, "the notes are on the wiki");
        assert_eq!(found[0].thread, Some(1), "a thread reply says which thread to open");
    }

    #[test]
    fn results_are_bounded() {
        let many: Vec<_> = (1..=200).map(|s| held(s, "ada", "status update", None)).collect();
        let found = search([("c", many.as_slice())], "status");
        assert_eq!(found.len(), MAX_RESULTS);
        assert_eq!(found[0].seq, 200);
    }
}
