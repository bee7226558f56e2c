//! SCIM filters (RFC 7644 §3.4.2.2): parsed into a tree, then judged
//! against a resource's JSON. Hostile input is bounded: a filter longer
//! than [`MAX_FILTER_LEN`] or nested deeper than [`MAX_DEPTH`] is refused
//! before it can cost more than a linear scan.

use crate::path::AttrPath;
use crate::ScimError;
use serde_json::Value;

pub const MAX_FILTER_LEN: usize = 4096;
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// A literal a filter compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Literal),
    /// `emails[type eq "work"]`: some element of a multi-valued attribute
    /// matches the inner filter.
    ValuePath(AttrPath, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Self, ScimError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(ScimError::InvalidFilter(format!("a filter may be {MAX_FILTER_LEN} bytes at most")));
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0, depth: 0 };
        let filter = parser.or()?;
        match parser.peek() {
            None => Ok(filter),
            Some(token) => Err(ScimError::InvalidFilter(format!("unexpected {}", token.describe()))),
        }
    }

    /// Whether `resource` (a SCIM resource as JSON) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Self::Present(path) => path.values(resource).iter().any(|v| is_present(v)),
            Self::Compare(path, op, literal) => {
                let exact = path.is_case_exact();
                path.values(resource).iter().any(|v| compare(v, *op, literal, exact))
                    || (*op == CompareOp::Ne && path.values(resource).is_empty())
            }
            Self::ValuePath(path, inner) => path.values(resource).iter().any(|element| inner.matches(element)),
            Self::And(a, b) => a.matches(resource) && b.matches(resource),
            Self::Or(a, b) => a.matches(resource) || b.matches(resource),
            Self::Not(inner) => !inner.matches(resource),
        }
    }

    /// `attr eq "value"` of a simple attribute: what an element created to
    /// satisfy the filter must hold (used by PATCH when no element matches).
    pub fn simple_equality(&self) -> Option<(&AttrPath, &str)> {
        match self {
            Self::Compare(path, CompareOp::Eq, Literal::String(value)) => Some((path, value)),
            _ => None,
        }
    }
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn compare(value: &Value, op: CompareOp, literal: &Literal, case_exact: bool) -> bool {
    // A complex value compares by its `value` sub-attribute (RFC 7644
    // §3.4.2.2: `emails co "x"` means any email's value).
    let value = match value {
        Value::Object(o) => match o.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")) {
            Some((_, v)) => v,
            None => return false,
        },
        other => other,
    };
    match (value, literal) {
        (Value::String(have), Literal::String(want)) => {
            let (have, want) =
                if case_exact { (have.clone(), want.clone()) } else { (have.to_lowercase(), want.to_lowercase()) };
            match op {
                CompareOp::Eq => have == want,
                CompareOp::Ne => have != want,
                CompareOp::Co => have.contains(&want),
                CompareOp::Sw => have.starts_with(&want),
                CompareOp::Ew => have.ends_with(&want),
                CompareOp::Gt => have > want,
                CompareOp::Ge => have >= want,
                CompareOp::Lt => have < want,
                CompareOp::Le => have <= want,
            }
        }
        (Value::Number(have), Literal::Number(want)) => {
            let Some(have) = have.as_f64() else { return false };
            match op {
                CompareOp::Eq => have == *want,
                CompareOp::Ne => have != *want,
                CompareOp::Gt => have > *want,
                CompareOp::Ge => have >= *want,
                CompareOp::Lt => have < *want,
                CompareOp::Le => have <= *want,
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
            }
        }
        (Value::Bool(have), Literal::Bool(want)) => match op {
            CompareOp::Eq => have == want,
            CompareOp::Ne => have != want,
            _ => false,
        },
        // Entra ID sends booleans as strings in places; compare them alike.
        (Value::Bool(have), Literal::String(want)) => match (op, want.to_ascii_lowercase().as_str()) {
            (CompareOp::Eq, "true") => *have,
            (CompareOp::Eq, "false") => !*have,
            (CompareOp::Ne, "true") => !*have,
            (CompareOp::Ne, "false") => *have,
            _ => false,
        },
        (Value::Null, Literal::Null) => op == CompareOp::Eq,
        (_, Literal::Null) => op == CompareOp::Ne,
        _ => op == CompareOp::Ne,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    String(String),
    Word(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Open => "'('".into(),
            Self::Close => "')'".into(),
            Self::OpenBracket => "'['".into(),
            Self::CloseBracket => "']'".into(),
            Self::String(s) => format!("the string {s:?}"),
            Self::Word(w) => format!("'{w}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, ScimError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '"' => {
                // A JSON string: find its end, honouring escapes, and let
                // serde decode it.
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (i, c) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = Some(i);
                        break;
                    }
                }
                let end = end.ok_or_else(|| ScimError::InvalidFilter("a string is not closed".into()))?;
                let decoded: String = serde_json::from_str(&text[start..=end])
                    .map_err(|_| ScimError::InvalidFilter("a string has a bad escape".into()))?;
                tokens.push(Token::String(decoded));
            }
            _ => {
                let mut end = text.len();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"') {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                tokens.push(Token::Word(text[start..end].to_owned()));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn deeper(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ScimError::InvalidFilter(format!("a filter may nest {MAX_DEPTH} deep at most")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.next();
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        self.deeper()?;
        let filter = if self.keyword("not") {
            self.next();
            self.expect(Token::Open)?;
            let inner = self.or()?;
            self.expect(Token::Close)?;
            Filter::Not(Box::new(inner))
        } else if self.peek() == Some(&Token::Open) {
            self.next();
            let inner = self.or()?;
            self.expect(Token::Close)?;
            inner
        } else {
            self.attribute_expression()?
        };
        self.depth -= 1;
        Ok(filter)
    }

    fn expect(&mut self, want: Token) -> Result<(), ScimError> {
        match self.next() {
            Some(token) if token == want => Ok(()),
            Some(token) => {
                Err(ScimError::InvalidFilter(format!("expected {}, found {}", want.describe(), token.describe())))
            }
            None => Err(ScimError::InvalidFilter(format!("expected {}, found the end", want.describe()))),
        }
    }

    fn attribute_expression(&mut self) -> Result<Filter, ScimError> {
        let path = match self.next() {
            Some(Token::Word(word)) => AttrPath::parse(&word)?,
            Some(token) => {
                return Err(ScimError::InvalidFilter(format!("expected an attribute, found {}", token.describe())))
            }
            None => return Err(ScimError::InvalidFilter("expected an attribute, found the end".into())),
        };
        if self.peek() == Some(&Token::OpenBracket) {
            self.next();
            self.deeper()?;
            let inner = self.or()?;
            self.depth -= 1;
            self.expect(Token::CloseBracket)?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let op = match self.next() {
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("pr") => return Ok(Filter::Present(path)),
            Some(Token::Word(word)) => CompareOp::parse(&word)
                .ok_or_else(|| ScimError::InvalidFilter(format!("'{word}' is not a comparison operator")))?,
            Some(token) => {
                return Err(ScimError::InvalidFilter(format!("expected an operator, found {}", token.describe())))
            }
            None => return Err(ScimError::InvalidFilter("expected an operator, found the end".into())),
        };
        let literal = match self.next() {
            Some(Token::String(s)) => Literal::String(s),
            Some(Token::Word(w)) if w == "true" => Literal::Bool(true),
            Some(Token::Word(w)) if w == "false" => Literal::Bool(false),
            Some(Token::Word(w)) if w == "null" => Literal::Null,
            Some(Token::Word(w)) => match w.parse::<f64>() {
                Ok(n) if n.is_finite() => Literal::Number(n),
                _ => return Err(ScimError::InvalidFilter(format!("'{w}' is not a value: quote strings"))),
            },
            Some(token) => {
                return Err(ScimError::InvalidFilter(format!("expected a value, found {}", token.describe())))
            }
            None => return Err(ScimError::InvalidFilter("expected a value, found the end".into())),
        };
        Ok(Filter::Compare(path, op, literal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "u1",
            "userName": "Ada@Example.org",
            "externalId": "00u1",
            "displayName": "Ada Lovelace",
            "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.org", "type": "work", "primary": true}, {"value": "ada@home.test", "type": "home"}],
            "meta": {"resourceType": "User"}
        })
    }

    fn matches(filter: &str) -> bool {
        Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}")).matches(&user())
    }

    #[test]
    fn what_identity_providers_send_matches_as_they_expect() {
        assert!(matches(r#"userName eq "ada@example.org""#), "userName is not case-exact");
        assert!(matches(r#"externalId eq "00u1""#));
        assert!(!matches(r#"externalId eq "00U1""#), "externalId is case-exact");
        assert!(matches(r#"displayName eq "Ada Lovelace""#));
        assert!(matches(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada@example.org""#));
        assert!(matches(r#"emails[type eq "work" and value co "example"]"#));
        assert!(matches(r#"emails.value ew "home.test""#));
        assert!(matches(r#"name.familyName sw "Love" and active eq true"#));
        assert!(matches(r#"not (active eq false) and (userName eq "x" or title pr or name.givenName pr)"#));
        assert!(matches(r#"meta.resourceType eq "User""#));
        assert!(!matches(r#"title pr"#));
        assert!(matches(r#"title ne "boss""#), "an absent attribute is not equal to anything");
        assert!(matches(r#"USERNAME EQ "ada@example.org""#), "names and operators are case-insensitive");
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // false and false or true == (false and false) or true
        assert!(matches(r#"userName eq "x" and userName eq "y" or active eq true"#));
        // true or false and false == true or (false and false)
        assert!(matches(r#"active eq true or userName eq "x" and userName eq "y""#));
    }

    #[test]
    fn malformed_filters_say_what_is_wrong() {
        for (filter, says) in [
            ("userName", "operator"),
            ("userName eq", "value"),
            (r#"userName eq "open"#, "not closed"),
            (r#"userName xx "a""#, "not a comparison operator"),
            (r#"userName eq ada"#, "quote strings"),
            (r#"(userName eq "a""#, "expected ')'"),
            (r#"emails[type eq "work""#, "expected ']'"),
            (r#"userName eq "a" extra"#, "unexpected"),
            ("", "attribute"),
            (r#"user$Name eq "a""#, "attribute"),
        ] {
            let err = Filter::parse(filter).expect_err(filter).to_string();
            assert!(err.contains(says), "{filter}: {err}");
        }
    }

    #[test]
    fn hostile_filters_are_refused_cheaply() {
        let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN));
        assert!(Filter::parse(&long).unwrap_err().to_string().contains("bytes at most"));
        let deep = format!("{}userName pr{}", "(".repeat(1000), ")".repeat(1000));
        assert!(Filter::parse(&deep).unwrap_err().to_string().contains("deep at most"));
        let nots = format!("{}userName pr{}", "not (".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&nots).is_err());
        // Multi-byte text where a schema prefix could start (found by the property below).
        assert!(Filter::parse("ür pr").is_err());
        assert!(Filter::parse("urñ:x pr").is_err());
    }

    proptest::proptest! {
        /// Whatever a provider sends, parsing and judging never panic and
        /// a filter that parses judges the same user the same way twice.
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(
            text in r#"(not|and|or|pr|eq|co|\(|\)|\[|\]|"[a-z@.]{0,6}"|userName|emails|emails\.value|name\.givenName|type|true|false|null|1\.5|urn:x:y:User:a| ){0,24}"#
        ) {
            if let Ok(filter) = Filter::parse(&text) {
                proptest::prop_assert_eq!(filter.matches(&user()), filter.matches(&user()));
            }
        }

        #[test]
        fn arbitrary_unicode_never_panics(text in "\\PC{0,64}") {
            let _ = Filter::parse(&text).map(|f| f.matches(&user()));
            let _ = crate::PatchPath::parse(&text);
        }
    }
}
