//! Enums whose wire form is one fixed string per variant (error codes, audit
//! actions), each string spelt out once beside its variant so that it can
//! be found with grep and cannot drift from its serde form.

/// Defines a fieldless enum from `Variant = "wire text"` pairs. Serde reads
/// and writes exactly that text, `as_str()` returns it, `parse()` reads it
/// back, and `ALL` lists every variant in declaration order (so tests and
/// generated clients see the complete set).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[doc = $doc:literal])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
        $vis enum $name {
            $( $(#[doc = $doc])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The exact text on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// What the variant means, in words for people (its doc
            /// comment): what an app shows instead of the wire text.
            pub fn description(self) -> String {
                let lines: &[&str] = match self {
                    $(Self::$variant => &[$($doc),*],)+
                };
                lines.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ")
            }

            /// The variant whose wire text this is.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|variant| variant.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(test)]
        impl $crate::string_enum::testing::WireText for $name {
            const ALL: &'static [Self] = Self::ALL;
            fn as_str(self) -> &'static str {
                self.as_str()
            }
            fn parse(text: &str) -> Option<Self> {
                Self::parse(text)
            }
            fn description(self) -> String {
                self.description()
            }
        }
    };
}

pub(crate) use string_enum;

#[cfg(test)]
pub(crate) mod testing {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use std::collections::HashSet;
    use std::fmt::Debug;

    /// What `string_enum!` gives every enum, for the checks below.
    pub trait WireText: Sized + Copy + Debug + PartialEq + Serialize + DeserializeOwned + 'static {
        const ALL: &'static [Self];
        fn as_str(self) -> &'static str;
        fn parse(text: &str) -> Option<Self>;
        fn description(self) -> String;
    }

    /// Every variant serialises to exactly its text and back, `as_str()` and
    /// `parse()` agree with serde, no text is used twice, every text follows
    /// `convention`, every variant is named after its text
    /// (`meeting.host.claim` is `MeetingHostClaim`) and says in words what
    /// it means (apps show that, not the text).
    pub fn check<T: WireText>(convention: &str, follows: impl Fn(&str) -> bool) {
        let mut seen = HashSet::new();
        for &variant in T::ALL {
            let text = variant.as_str();
            assert!(seen.insert(text), "`{text}` is used by two variants");
            assert!(follows(text), "`{text}` is not {convention}");
            assert_eq!(serde_json::to_value(variant).unwrap(), serde_json::Value::from(text));
            assert_eq!(serde_json::from_value::<T>(text.into()).unwrap(), variant);
            assert_eq!(T::parse(text), Some(variant));
            assert_eq!(format!("{variant:?}"), pascal_case(text), "the variant for `{text}` is misnamed");
            let description = variant.description();
            assert!(
                !description.is_empty() && !description.contains("  "),
                "`{text}` is not described: {description:?}"
            );
        }
        assert!(serde_json::from_value::<T>("no-such-code".into()).is_err());
        assert_eq!(T::parse("no-such-code"), None);
    }

    /// `auth.2fa.recovery_codes` → `Auth2faRecoveryCodes`.
    fn pascal_case(text: &str) -> String {
        text.split(['.', '-', '_'])
            .flat_map(|word| {
                let mut chars = word.chars();
                chars.next().map(|first| first.to_ascii_uppercase()).into_iter().chain(chars)
            })
            .collect()
    }

    /// Lowercase ASCII letters and digits in words joined by `separator`.
    pub fn words_joined_by(text: &str, separator: char) -> bool {
        text.split(separator)
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
    }
}
