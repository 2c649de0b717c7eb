//! The typed form of one oslo.policy rule expression, and its canonical text.
//!
//! `Display` prints a form that [`Rule::parse`] reads back to an equal value:
//! `parse(rule.to_string()) == rule` for every rule the parser can produce.
//! The printed text is oslo.policy syntax, so it can go into a policy file.

use std::fmt;

use crate::error::Result;

/// One rule expression: `role:admin and project:%(target.secret.project_id)s`.
///
/// Build it with [`Rule::parse`]. A hand-built value prints and round-trips
/// only if it is one the parser could produce: `And`/`Or` with two or more
/// operands, non-empty rule names without whitespace, and so on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `@`, and the empty rule text: always passes.
    Always,
    /// `!`: never passes.
    Never,
    /// `role:NAME`: the caller holds the role (ASCII case-insensitive). The
    /// name may use `%(key)s` substitutions from the target, as oslo allows.
    Role(Template),
    /// `rule:NAME`: the named rule passes. The name is taken verbatim (oslo
    /// does not substitute it); an unknown name never passes.
    Ref(String),
    /// `KIND:MATCH`: the match side, substituted from the target, equals the
    /// subject (a literal or a credential of the caller).
    Match { subject: Subject, pattern: Template },
    /// `not R`.
    Not(Box<Rule>),
    /// `A and B and ...`: two or more operands.
    And(Vec<Rule>),
    /// `A or B or ...`: two or more operands.
    Or(Vec<Rule>),
}

/// The left side of a `KIND:MATCH` check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `'read'`, `"False"`, or a bare `True`, `False`, `None` or decimal
    /// integer. oslo's `GenericCheck` evaluates the left side as a Python
    /// literal and compares its `str()` with the substituted match, so a bare
    /// `True` is stored as the text `"True"` and `-0` as `"0"`.
    Literal(String),
    /// A credential name: `user_id`/`user`, `project_id`/`project`/`tenant`,
    /// `roles`; any other name never matches (our credentials hold no more).
    Credential(String),
}

/// The match side of a check: literal text with `%(key)s` substitutions.
///
/// Pieces are kept canonical: no empty text piece and no two adjacent text
/// pieces, so two templates that mean the same are equal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// One piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text compared as is.
    Text(String),
    /// `%(key)s`: the target's value for `key`; a missing key fails the check.
    Key(String),
}

impl Rule {
    /// Parses oslo.policy rule text; see the module documentation of
    /// [`crate::policy`] for the accepted language.
    pub fn parse(text: &str) -> Result<Rule> {
        super::parse::parse_rule(text)
    }
}

impl Template {
    /// Builds a template from pieces, merging adjacent text and dropping
    /// empty text so equal meanings compare equal.
    pub fn from_pieces(pieces: impl IntoIterator<Item = Piece>) -> Self {
        let mut out: Vec<Piece> = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) if t.is_empty() => {}
                Piece::Text(t) => match out.last_mut() {
                    Some(Piece::Text(prev)) => prev.push_str(&t),
                    _ => out.push(Piece::Text(t)),
                },
                key @ Piece::Key(_) => out.push(key),
            }
        }
        Template { pieces: out }
    }

    /// A template without substitutions.
    pub fn literal(text: impl Into<String>) -> Self {
        Template::from_pieces([Piece::Text(text.into())])
    }

    /// A template that is exactly one `%(key)s`.
    pub fn key(key: impl Into<String>) -> Self {
        Template::from_pieces([Piece::Key(key.into())])
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The template in `%`-syntax, without quotes: `%` doubled, keys as `%(k)s`.
    fn render(&self) -> String {
        let mut s = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => s.push_str(&t.replace('%', "%%")),
                Piece::Key(k) => {
                    s.push_str("%(");
                    s.push_str(k);
                    s.push_str(")s");
                }
            }
        }
        s
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = self.render();
        // A bare match that starts with a quote would be read as quoted, and
        // the tokenizer peels a trailing `)` off as a closing parenthesis.
        let needs_quotes = bare.starts_with(['\'', '"']) || bare.ends_with(')');
        if !needs_quotes {
            return f.write_str(&bare);
        }
        let quote = if bare.contains('\'') { '"' } else { '\'' };
        write!(f, "{quote}{bare}{quote}")
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Credential(name) => f.write_str(name),
            Subject::Literal(text) if is_bare_literal(text) => f.write_str(text),
            Subject::Literal(text) => {
                let quote = if text.contains('\'') { '"' } else { '\'' };
                write!(f, "{quote}{text}{quote}")
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Always => f.write_str("@"),
            Rule::Never => f.write_str("!"),
            Rule::Role(t) => write!(f, "role:{t}"),
            Rule::Ref(name) => write!(f, "rule:{name}"),
            Rule::Match { subject, pattern } => write!(f, "{subject}:{pattern}"),
            Rule::Not(inner) => {
                f.write_str("not ")?;
                write_operand(f, inner, matches!(**inner, Rule::And(_) | Rule::Or(_)))
            }
            Rule::And(rules) => write_joined(f, rules, " and ", |r| {
                matches!(r, Rule::And(_) | Rule::Or(_))
            }),
            Rule::Or(rules) => write_joined(f, rules, " or ", |r| matches!(r, Rule::Or(_))),
        }
    }
}

/// True for literal text that a bare left side parses back to: `True`,
/// `False`, `None` and canonical decimal integers.
pub(super) fn is_bare_literal(text: &str) -> bool {
    matches!(text, "True" | "False" | "None") || is_canonical_int(text)
}

/// `0` or `-?[1-9][0-9]*`: what Python's `str(int)` prints.
pub(super) fn is_canonical_int(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if digits == "0" {
        return text == "0";
    }
    !digits.starts_with('0')
}

fn write_joined(
    f: &mut fmt::Formatter<'_>,
    rules: &[Rule],
    sep: &str,
    needs_parens: impl Fn(&Rule) -> bool,
) -> fmt::Result {
    for (i, rule) in rules.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_operand(f, rule, needs_parens(rule))?;
    }
    Ok(())
}

fn write_operand(f: &mut fmt::Formatter<'_>, rule: &Rule, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({rule})")
    } else {
        write!(f, "{rule}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_pieces_are_canonical() {
        let t = Template::from_pieces([
            Piece::Text("a".into()),
            Piece::Text(String::new()),
            Piece::Text("b".into()),
            Piece::Key("k".into()),
            Piece::Text(String::new()),
        ]);
        assert_eq!(
            t.pieces(),
            &[Piece::Text("ab".into()), Piece::Key("k".into())]
        );
        assert_eq!(Template::from_pieces([]), Template::literal(""));
    }

    #[test]
    fn templates_print_quoted_only_when_needed() {
        assert_eq!(Template::key("project_id").to_string(), "%(project_id)s");
        assert_eq!(Template::literal("50%").to_string(), "50%%");
        assert_eq!(Template::literal("a)").to_string(), "'a)'");
        assert_eq!(Template::literal("'x").to_string(), "\"'x\"");
        assert_eq!(Template::literal("").to_string(), "");
    }

    #[test]
    fn literals_print_bare_only_when_python_would_read_them_back() {
        let lit = |s: &str| Subject::Literal(s.into()).to_string();
        assert_eq!(lit("True"), "True");
        assert_eq!(lit("-12"), "-12");
        assert_eq!(lit("012"), "'012'");
        assert_eq!(lit("-0"), "'-0'");
        assert_eq!(lit("read"), "'read'");
        assert_eq!(lit("it's"), "\"it's\"");
    }

    #[test]
    fn nesting_prints_with_the_parentheses_it_needs() {
        let a = || Rule::Ref("a".into());
        let r = Rule::Or(vec![
            Rule::And(vec![a(), Rule::Not(Box::new(Rule::Or(vec![a(), a()])))]),
            Rule::Or(vec![a(), a()]),
        ]);
        assert_eq!(
            r.to_string(),
            "rule:a and not (rule:a or rule:a) or (rule:a or rule:a)"
        );
    }
}
