//! The one rule for names people show each other (display names in
//! meetings, on accounts, in waiting rooms): what they can contain so that
//! one person cannot look exactly like another.
//!
//! A name is normalised to NFC, its whitespace collapsed to single spaces,
//! and refused when it holds characters that draw nothing or reorder what
//! is drawn: controls, zero-width and other invisible format characters,
//! bidirectional embeddings, overrides and isolates, or a pile of combining
//! marks on one letter. Line and paragraph separators are whitespace, so they
//! become a plain space like any other run of it. "Alice Owner"
//! followed by a zero-width space would otherwise look exactly like Alice.
//!
//! Joiners and variation selectors have a real use between non-Latin
//! letters and in emoji (Persian's zero-width non-joiner, 👩‍💻, ❤️), so they
//! are accepted there, and only there: next to ASCII, a space or the ends of
//! the name they can only hide something.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Longest display name, in characters after normalisation.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest organisation name (shown beside its members' names).
pub const MAX_ORGANISATION_NAME_CHARS: usize = 100;
/// Most combining marks accepted on one base character (Vietnamese stacks
/// two, some Indic clusters three; "Zalgo" text stacks dozens).
pub const MAX_COMBINING_MARKS: usize = 3;

/// Why a display name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Longer than this many characters.
    TooLong(usize),
    /// A character that draws nothing or reorders text; `U+XXXX` names it.
    Invisible(char),
    TooManyMarks,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "must not be empty"),
            Self::TooLong(max) => write!(f, "must be at most {max} characters"),
            Self::Invisible(c) => {
                write!(f, "must not contain invisible, control or text-direction characters (U+{:04X})", u32::from(*c))
            }
            Self::TooManyMarks => {
                write!(f, "must not stack more than {MAX_COMBINING_MARKS} accents on one letter")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// A person's name as it will be shown, or why it cannot be.
pub fn display_name(raw: &str) -> Result<String, NameError> {
    shown_name(raw, MAX_DISPLAY_NAME_CHARS)
}

/// An organisation's name as it will be shown, or why it cannot be.
pub fn organisation_name(raw: &str) -> Result<String, NameError> {
    shown_name(raw, MAX_ORGANISATION_NAME_CHARS)
}

fn shown_name(raw: &str, max_chars: usize) -> Result<String, NameError> {
    let normalised: String = raw.nfc().collect();
    let mut name = String::with_capacity(normalised.len());
    // Any run of whitespace (no-break and wide spaces included) becomes one
    // space: "Alice  Owner" and "Alice\u{3000}Owner" are "Alice Owner".
    for word in normalised.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if !name.is_empty() {
            name.push(' ');
        }
        name.push_str(word);
    }
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let chars: Vec<char> = name.chars().collect();
    if chars.len() > max_chars {
        return Err(NameError::TooLong(max_chars));
    }
    let mut marks = 0;
    for (i, &c) in chars.iter().enumerate() {
        if is_combining_mark(c) {
            marks += 1;
            // A mark needs a letter to sit on, and only a few at a time.
            if i == 0 || chars[i - 1] == ' ' {
                return Err(NameError::Invisible(c));
            }
            if marks > MAX_COMBINING_MARKS {
                return Err(NameError::TooManyMarks);
            }
            continue;
        }
        marks = 0;
        if c.is_control() || always_invisible(c) {
            return Err(NameError::Invisible(c));
        }
        if joins_neighbours(c) {
            let between_letters = |n: Option<&char>| n.is_some_and(|n| !n.is_ascii() && !n.is_whitespace());
            let before = i.checked_sub(1).and_then(|j| chars.get(j));
            // A selector modifies what precedes it; a joiner joins two letters.
            let after_ok = is_variation_selector(c) || between_letters(chars.get(i + 1));
            if !between_letters(before) || !after_ok {
                return Err(NameError::Invisible(c));
            }
        }
    }
    Ok(name)
}

/// Zero-width joiners and variation selectors: invisible themselves, but
/// part of how some scripts and emoji are written.
fn joins_neighbours(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}') || is_variation_selector(c)
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Format characters (Unicode category Cf) and fillers that draw nothing,
/// and the bidirectional controls. (Line and paragraph separators are
/// whitespace, already turned into spaces.)
fn always_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                      // soft hyphen
            | '\u{034F}'                // combining grapheme joiner
            | '\u{061C}'                // Arabic letter mark
            | '\u{115F}' | '\u{1160}'   // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'   // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}'   // Mongolian selectors and vowel separator
            | '\u{200B}'                // zero-width space
            | '\u{200E}' | '\u{200F}'   // left-to-right and right-to-left marks
            | '\u{202A}'..='\u{202E}'   // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, isolates
            | '\u{3164}' | '\u{FFA0}'   // Hangul fillers
            | '\u{FEFF}'                // zero-width no-break space
            | '\u{FFF0}'..='\u{FFFB}'   // specials, interlinear annotation
            | '\u{110BD}' | '\u{110CD}' // Kaithi number signs
            | '\u{1D173}'..='\u{1D17A}' // musical formatting
            | '\u{E0000}'..='\u{E007F}' // tags
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_in_any_script_pass_trimmed_and_normalised() {
        for name in ["Ada Lovelace", "José Núñez", "Nguyễn Thị Minh Khai", "李小龍", "Σωκράτης", "हिन्दी नाम", "محمد"]
        {
            assert_eq!(display_name(name).as_deref(), Ok(name), "{name}");
        }
        assert_eq!(display_name("  Ada \t  Lovelace ").as_deref(), Ok("Ada Lovelace"));
        assert_eq!(display_name("Ada\u{00A0}Lovelace").as_deref(), Ok("Ada Lovelace"), "no-break space");
        assert_eq!(display_name("Ada\u{2028}Lovelace\u{2029}").as_deref(), Ok("Ada Lovelace"), "line separators");
        // Decomposed é becomes the composed one: two spellings, one name.
        assert_eq!(display_name("Jose\u{0301}").as_deref(), Ok("José"));
    }

    #[test]
    fn joiners_and_selectors_pass_where_they_mean_something() {
        for name in ["می\u{200C}خواهم", "Dev 👩\u{200D}💻", "I ❤\u{FE0F}", "Ada ❤\u{FE0F} Rust"] {
            assert!(display_name(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn names_that_hide_or_reorder_characters_are_refused() {
        for name in [
            "Alice Owner\u{200B}",
            "Alice\u{200B}Owner",
            "Alice Owner\u{200D}",
            "Alice\u{200C}Owner",
            "\u{FE0F}Alice",
            "Alice\u{202E}renwO",
            "Alice\u{2066}Owner\u{2069}",
            "Alice\u{200F}",
            "Alice\u{FEFF}",
            "Alice\u{00AD}Owner",
            "Alice\u{0007}",
            "Alice\u{E0041}",
            "\u{0301}Alice",
        ] {
            assert!(matches!(display_name(name), Err(NameError::Invisible(_))), "{name:?}");
        }
        assert_eq!(display_name("Z\u{0336}\u{0336}\u{0336}\u{0336}algo"), Err(NameError::TooManyMarks));
        // Marks that compose with their letter count once composed.
        assert!(display_name("Z\u{0301}\u{0336}\u{0336}\u{0336}algo").is_ok());
        assert_eq!(display_name(" \u{3000} "), Err(NameError::Empty));
        assert_eq!(display_name(&"x".repeat(65)), Err(NameError::TooLong(64)));
        assert!(organisation_name(&"x".repeat(100)).is_ok());
        assert!(organisation_name("Acme\u{200B}").is_err());
        assert!(display_name(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn refusals_explain_themselves() {
        let message = display_name("Alice\u{200B}").unwrap_err().to_string();
        assert!(message.contains("U+200B"), "{message}");
    }
}
