//! The rule-language parser.
//!
//! Tokens are split on whitespace, as oslo.policy's tokenizer does: leading
//! `(` and trailing `)` are peeled off each word, `and`/`or`/`not` are
//! keywords in any case, anything else is one check. So a check can hold no
//! whitespace, even inside quotes. The grammar, loosest first:
//!
//! ```text
//! rule  := or | ""                     ("" = always, as in oslo)
//! or    := and ("or" and)*
//! and   := unary ("and" unary)*
//! unary := "not" unary | "(" or ")" | check
//! check := "@" | "!" | "rule:" NAME | "role:" MATCH | KIND ":" MATCH
//! ```
//!
//! Where oslo.policy fails closed on text it cannot read (logging an error
//! and denying), we refuse it when the policy is loaded.

use crate::error::{Error, Result};

use super::rule::{Piece, Rule, Subject, Template};

/// How deep `(` and `not` may nest. oslo sets no bound; without one a crafted
/// rule could exhaust the stack of the parser, the printer or the evaluator.
pub const MAX_NESTING: usize = 64;

pub(super) fn parse_rule(text: &str) -> Result<Rule> {
    // oslo: `if not rule: return TrueCheck()`. Only the truly empty text;
    // a blank one fails to parse there (and so denies), here it is refused.
    if text.is_empty() {
        return Ok(Rule::Always);
    }
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Err(error(
            text,
            0,
            "rule text is blank (write \"\" or `@` to allow all)",
        ));
    }
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        depth: 0,
    };
    let rule = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(rule),
        Some(t) => Err(error(
            text,
            t.at,
            format!(
                "expected `and`, `or` or the end, found {}",
                t.kind.describe()
            ),
        )),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind<'a> {
    Open,
    Close,
    And,
    Or,
    Not,
    Check(&'a str),
}

impl Kind<'_> {
    fn describe(&self) -> String {
        match self {
            Kind::Open => "`(`".into(),
            Kind::Close => "`)`".into(),
            Kind::And => "`and`".into(),
            Kind::Or => "`or`".into(),
            Kind::Not => "`not`".into(),
            Kind::Check(s) => format!("check `{}`", excerpt(s)),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind<'a>,
    /// Byte offset in the rule text, for error messages.
    at: usize,
}

fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    for (start, word) in words(text) {
        let core = word.trim_start_matches('(');
        let opens = word.len() - core.len();
        tokens.extend((0..opens).map(|i| Token {
            kind: Kind::Open,
            at: start + i,
        }));
        let inner = core.trim_end_matches(')');
        let at = start + opens;
        if !inner.is_empty() {
            let kind = if inner.eq_ignore_ascii_case("and") {
                Kind::And
            } else if inner.eq_ignore_ascii_case("or") {
                Kind::Or
            } else if inner.eq_ignore_ascii_case("not") {
                Kind::Not
            } else {
                Kind::Check(inner)
            };
            tokens.push(Token { kind, at });
        }
        let closes_at = at + inner.len();
        tokens.extend((0..core.len() - inner.len()).map(|i| Token {
            kind: Kind::Close,
            at: closes_at + i,
        }));
    }
    tokens
}

/// Whitespace-separated words with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut offset = 0;
    std::iter::from_fn(move || {
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            return None;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let word = (offset, &trimmed[..end]);
        rest = &trimmed[end..];
        offset += end;
        Some(word)
    })
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn or(&mut self) -> Result<Rule> {
        let mut operands = vec![self.and()?];
        while self.peek().is_some_and(|t| t.kind == Kind::Or) {
            self.pos += 1;
            operands.push(self.and()?);
        }
        Ok(collapse(operands, Rule::Or))
    }

    fn and(&mut self) -> Result<Rule> {
        let mut operands = vec![self.unary()?];
        while self.peek().is_some_and(|t| t.kind == Kind::And) {
            self.pos += 1;
            operands.push(self.unary()?);
        }
        Ok(collapse(operands, Rule::And))
    }

    fn unary(&mut self) -> Result<Rule> {
        let Some(token) = self.peek() else {
            let end = self.text.len();
            return Err(error(
                self.text,
                end,
                "rule ends where a check was expected",
            ));
        };
        match token.kind {
            Kind::Not => {
                self.enter(token.at)?;
                self.pos += 1;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Rule::Not(Box::new(inner)))
            }
            Kind::Open => {
                self.enter(token.at)?;
                self.pos += 1;
                let inner = self.or()?;
                match self.peek() {
                    Some(t) if t.kind == Kind::Close => self.pos += 1,
                    Some(t) => {
                        let found = t.kind.describe();
                        return Err(error(
                            self.text,
                            t.at,
                            format!("expected `)`, found {found}"),
                        ));
                    }
                    None => {
                        let msg = "`(` is never closed";
                        return Err(error(self.text, token.at, msg));
                    }
                }
                self.depth -= 1;
                Ok(inner)
            }
            Kind::Check(check) => {
                self.pos += 1;
                parse_check(self.text, check, token.at)
            }
            Kind::Close | Kind::And | Kind::Or => Err(error(
                self.text,
                token.at,
                format!(
                    "expected a check, `not` or `(`, found {}",
                    token.kind.describe()
                ),
            )),
        }
    }

    fn enter(&mut self, at: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let msg = format!("`(` and `not` nest deeper than {MAX_NESTING}");
            return Err(error(self.text, at, msg));
        }
        Ok(())
    }
}

fn collapse(mut operands: Vec<Rule>, join: fn(Vec<Rule>) -> Rule) -> Rule {
    if operands.len() == 1 {
        operands.remove(0)
    } else {
        join(operands)
    }
}

/// One check token: `@`, `!`, `rule:..`, `role:..`, `'lit':..` or `kind:..`.
fn parse_check(text: &str, check: &str, at: usize) -> Result<Rule> {
    match check {
        "@" => return Ok(Rule::Always),
        "!" => return Ok(Rule::Never),
        _ => {}
    }
    if let Some(quote) = check.chars().next().filter(|c| matches!(c, '\'' | '"')) {
        let body = &check[1..];
        let Some(close) = body.find(quote) else {
            return Err(error(text, at, "quoted literal is not closed"));
        };
        let literal = &body[..close];
        if literal.contains('\\') {
            let msg = "backslash escapes are not supported in a quoted literal";
            return Err(error(text, at, msg));
        }
        let Some(matched) = body[close + 1..].strip_prefix(':') else {
            let msg = "expected `:` after the quoted literal (`'value':%(key)s`)";
            return Err(error(text, at, msg));
        };
        let match_at = at + 1 + close + 2;
        return Ok(Rule::Match {
            subject: Subject::Literal(literal.to_owned()),
            pattern: parse_template(text, matched, match_at)?,
        });
    }
    let Some((kind, matched)) = check.split_once(':') else {
        let msg = format!(
            "expected KIND:MATCH, `@` or `!`, found `{}`",
            excerpt(check)
        );
        return Err(error(text, at, msg));
    };
    let match_at = at + kind.len() + 1;
    match kind {
        "rule" if matched.is_empty() => Err(error(text, at, "`rule:` needs a rule name")),
        "rule" => Ok(Rule::Ref(matched.to_owned())),
        "role" => Ok(Rule::Role(parse_template(text, matched, match_at)?)),
        "http" | "https" => Err(error(
            text,
            at,
            "external `http:`/`https:` checks are not supported",
        )),
        "" => Err(error(text, at, "check has nothing before `:`")),
        _ => Ok(Rule::Match {
            subject: parse_subject(text, kind, at)?,
            pattern: parse_template(text, matched, match_at)?,
        }),
    }
}

/// An unquoted left side: a Python literal oslo's `ast.literal_eval` reads,
/// stored as its `str()`, or else a credential name.
fn parse_subject(text: &str, kind: &str, at: usize) -> Result<Subject> {
    if matches!(kind, "True" | "False" | "None") {
        return Ok(Subject::Literal(kind.to_owned()));
    }
    let first = kind.chars().next().unwrap_or(' ');
    if first.is_ascii_digit() || first == '-' {
        return python_int(kind).map(Subject::Literal).ok_or_else(|| {
            let msg = format!(
                "unsupported literal `{}`: quote it, or write a decimal integer",
                excerpt(kind)
            );
            error(text, at, msg)
        });
    }
    let name_ok = (first.is_ascii_alphabetic() || first == '_')
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !name_ok {
        let msg = format!("unsupported check kind `{}`", excerpt(kind));
        return Err(error(text, at, msg));
    }
    Ok(Subject::Credential(kind.to_owned()))
}

/// `str(ast.literal_eval(s))` for the decimal integers Python accepts
/// (`-?` then `0+` or a digit string without leading zero); `None` otherwise.
fn python_int(s: &str) -> Option<String> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.bytes().all(|b| b == b'0') {
        return Some("0".to_owned());
    }
    if digits.starts_with('0') {
        return None;
    }
    Some(if negative {
        format!("-{digits}")
    } else {
        digits.to_owned()
    })
}

/// The match side. Quotes (`'..'` or `".."`) only delimit: the text inside
/// is read the same way, so `'%(k)s)'` is a key followed by `)`.
///
/// oslo keeps quotes on the match side as part of the compared text, so a
/// quoted match could never equal a real id there; we strip them.
fn parse_template(text: &str, matched: &str, at: usize) -> Result<Template> {
    let body = match matched.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let inner = matched
                .strip_suffix(q)
                .filter(|_| matched.len() >= 2)
                .map(|m| &m[1..]);
            match inner {
                Some(inner) if !inner.contains(q) => inner,
                _ => {
                    let msg = "quoted match must be one quoted word (`'text'`)";
                    return Err(error(text, at, msg));
                }
            }
        }
        _ => matched,
    };
    let mut pieces = Vec::new();
    let mut rest = body;
    while let Some(pct) = rest.find('%') {
        pieces.push(Piece::Text(rest[..pct].to_owned()));
        let after = &rest[pct + 1..];
        if let Some(more) = after.strip_prefix('%') {
            pieces.push(Piece::Text("%".to_owned()));
            rest = more;
            continue;
        }
        let key = after
            .strip_prefix('(')
            .and_then(|a| a.split_once(')'))
            .filter(|(key, tail)| !key.is_empty() && !key.contains('(') && tail.starts_with('s'));
        let Some((key, tail)) = key else {
            let msg = "`%` must start `%(key)s` or be doubled as `%%`";
            return Err(error(text, at, msg));
        };
        pieces.push(Piece::Key(key.to_owned()));
        rest = &tail[1..];
    }
    pieces.push(Piece::Text(rest.to_owned()));
    Ok(Template::from_pieces(pieces))
}

fn error(text: &str, at: usize, what: impl std::fmt::Display) -> Error {
    Error::invalid(
        "policy",
        format!("{what} (at byte {at} of rule `{}`)", excerpt(text)),
    )
}

/// At most 80 characters of user text for a message.
fn excerpt(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::error::ErrorKind;

    fn p(s: &str) -> Rule {
        Rule::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn refused(s: &str) -> String {
        let e = Rule::parse(s).expect_err(s);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s:?}");
        assert_eq!(e.field(), Some("policy"));
        e.context().to_owned()
    }

    fn r(name: &str) -> Rule {
        Rule::Ref(name.into())
    }

    fn cred(name: &str, key: &str) -> Rule {
        Rule::Match {
            subject: Subject::Credential(name.into()),
            pattern: Template::key(key),
        }
    }

    fn lit(value: &str, key: &str) -> Rule {
        Rule::Match {
            subject: Subject::Literal(value.into()),
            pattern: Template::key(key),
        }
    }

    #[test]
    fn atoms() {
        assert_eq!(p(""), Rule::Always);
        assert_eq!(p("@"), Rule::Always);
        assert_eq!(p("!"), Rule::Never);
        assert_eq!(p("role:admin"), Rule::Role(Template::literal("admin")));
        assert_eq!(
            p("role:key-manager:service-admin"),
            Rule::Role(Template::literal("key-manager:service-admin"))
        );
        assert_eq!(p("rule:admin_or_creator"), r("admin_or_creator"));
        assert_eq!(p("rule:secret:get"), r("secret:get"));
        assert_eq!(
            p("project:%(target.secret.project_id)s"),
            cred("project", "target.secret.project_id")
        );
        assert_eq!(
            p("project_id:%(project_id)s"),
            cred("project_id", "project_id")
        );
        assert_eq!(
            p("user:%(target.secret.creator_id)s"),
            cred("user", "target.secret.creator_id")
        );
        assert_eq!(
            p("'read':%(target.secret.read)s"),
            lit("read", "target.secret.read")
        );
        assert_eq!(
            p("\"False\":%(target.secret.read_project_access)s"),
            lit("False", "target.secret.read_project_access")
        );
        assert_eq!(
            p("True:%(enforce_new_defaults)s"),
            lit("True", "enforce_new_defaults")
        );
        assert_eq!(p("-0:%(k)s"), lit("0", "k"));
        assert_eq!(p("000:%(k)s"), lit("0", "k"));
        assert_eq!(p("42:%(k)s"), lit("42", "k"));
    }

    #[test]
    fn match_side_templates_and_quotes() {
        let t = |s: &str| match p(s) {
            Rule::Role(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(t("role:%(k)s"), Template::key("k"));
        assert_eq!(
            t("role:a%(k)sb%%"),
            Template::from_pieces([
                Piece::Text("a".into()),
                Piece::Key("k".into()),
                Piece::Text("b%".into())
            ])
        );
        assert_eq!(t("role:'admin'"), Template::literal("admin"));
        assert_eq!(t("role:\"it's\""), Template::literal("it's"));
        assert_eq!(t("role:'a)'"), Template::literal("a)"));
        assert_eq!(t("role:''"), Template::literal(""));
        assert_eq!(t("role:"), Template::literal(""));
        assert_eq!(t("role:a'b"), Template::literal("a'b"));
        assert_eq!(
            p("'a':'b'"),
            Rule::Match {
                subject: Subject::Literal("a".into()),
                pattern: Template::literal("b"),
            }
        );
    }

    #[test]
    fn precedence_is_not_and_or() {
        let (a, b, c, d) = (r("a"), r("b"), r("c"), r("d"));
        assert_eq!(
            p("rule:a or rule:b and rule:c"),
            Rule::Or(vec![a.clone(), Rule::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(
            p("not rule:a and rule:b"),
            Rule::And(vec![Rule::Not(Box::new(a.clone())), b.clone()])
        );
        assert_eq!(
            p("rule:a and rule:b or rule:c and rule:d"),
            Rule::Or(vec![
                Rule::And(vec![a.clone(), b.clone()]),
                Rule::And(vec![c.clone(), d.clone()])
            ])
        );
        assert_eq!(
            p("(rule:a or rule:b) and rule:c"),
            Rule::And(vec![Rule::Or(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(
            p("not not rule:a"),
            Rule::Not(Box::new(Rule::Not(Box::new(a.clone()))))
        );
        assert_eq!(p("((rule:a))"), a);
        assert_eq!(p("rule:a AND Not rule:b"), p("rule:a and not rule:b"));
        assert_eq!(p("  rule:a\tor\n rule:b "), Rule::Or(vec![a, b]));
    }

    #[test]
    fn refusals_say_what_and_where() {
        assert!(refused(" ").contains("blank"));
        assert!(refused("rule:a rule:b").contains("at byte 7"));
        assert!(refused("rule:a and").contains("ends where a check"));
        assert!(refused("(rule:a").contains("never closed"));
        assert!(refused("rule:a)").contains("`)`"));
        assert!(refused("()").contains("found `)`"));
        assert!(refused("not").contains("ends where"));
        assert!(refused("and rule:a").contains("found `and`"));
        assert!(refused("admin").contains("KIND:MATCH"));
        assert!(refused("rule:").contains("rule name"));
        assert!(refused(":x").contains("nothing before"));
        assert!(refused("http:https://example.com").contains("external"));
        assert!(refused("'read:%(k)s").contains("not closed"));
        assert!(refused("'read'%(k)s").contains("expected `:`"));
        assert!(refused("'a\\'b':x").contains("backslash"));
        assert!(refused("role:'admin").contains("quoted match"));
        assert!(refused("role:'a'b'").contains("quoted match"));
        assert!(refused("role:50%").contains("`%%`"));
        assert!(refused("role:%(k)d").contains("`%%`"));
        assert!(refused("role:%()s").contains("`%%`"));
        assert!(refused("role:%(a(b)s").contains("`%%`"));
        assert!(refused("role:%s").contains("`%%`"));
        assert!(refused("1.5:%(k)s").contains("unsupported literal"));
        // Python reads neither (`SyntaxError`), so oslo would raise at check time.
        assert!(refused("007:%(k)s").contains("unsupported literal"));
        assert!(refused("-007:%(k)s").contains("unsupported literal"));
        assert!(refused("a$b:%(k)s").contains("unsupported check kind"));
        assert!(refused("@:x").contains("unsupported check kind"));
    }

    #[test]
    fn nesting_is_bounded_without_overflowing_the_stack() {
        let ok = format!("{}@{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(p(&ok), Rule::Always);
        let deep = format!(
            "{}@{}",
            "(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        assert!(refused(&deep).contains("nest deeper"));
        let huge = format!("{}@{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(refused(&huge).contains("nest deeper"));
        let nots = format!("{}@", "not ".repeat(100_000));
        assert!(refused(&nots).contains("nest deeper"));
        let mixed = "not (".repeat(40) + "@" + &")".repeat(40);
        assert!(refused(&mixed).contains("nest deeper"));
    }

    #[test]
    fn long_flat_chains_are_fine() {
        let text = vec!["role:a"; 10_000].join(" or ");
        match p(&text) {
            Rule::Or(v) => assert_eq!(v.len(), 10_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_excerpt_cuts_on_a_char_boundary() {
        let text = "é".repeat(200);
        let msg = refused(&text);
        assert!(msg.contains('…'));
    }

    // ---- round trip: generated ASTs ----

    fn text_piece() -> impl Strategy<Value = Piece> {
        // No whitespace (the tokenizer splits on it) and no `"`, so `"` is
        // always free to quote with.
        "[a-zA-Z0-9_.:%()'@!-]{1,6}".prop_map(Piece::Text)
    }

    fn key_piece() -> impl Strategy<Value = Piece> {
        "[a-z_.:'%-]{1,10}".prop_map(Piece::Key)
    }

    fn template() -> impl Strategy<Value = Template> {
        prop::collection::vec(prop_oneof![text_piece(), key_piece()], 0..4)
            .prop_map(Template::from_pieces)
    }

    fn subject() -> impl Strategy<Value = Subject> {
        let reserved = |s: &String| !matches!(s.as_str(), "rule" | "role" | "http" | "https");
        prop_oneof![
            "[a-zA-Z0-9_.:()'@!%-]{0,8}".prop_map(Subject::Literal),
            prop_oneof![
                Just("True"),
                Just("False"),
                Just("None"),
                Just("0"),
                Just("-17")
            ]
            .prop_map(|s| Subject::Literal(s.into())),
            "[a-z_][a-z0-9_.-]{0,8}"
                .prop_filter("reserved", reserved)
                .prop_map(Subject::Credential),
            prop_oneof![
                Just("user"),
                Just("project_id"),
                Just("roles"),
                Just("tenant")
            ]
            .prop_map(|s| Subject::Credential(s.into())),
        ]
    }

    fn rule_name() -> impl Strategy<Value = String> {
        "[a-z_:(.'\"-][a-z0-9_:().'\"-]{0,10}".prop_filter("ends with )", |s| !s.ends_with(')'))
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        let leaf = prop_oneof![
            Just(Rule::Always),
            Just(Rule::Never),
            template().prop_map(Rule::Role),
            rule_name().prop_map(Rule::Ref),
            (subject(), template()).prop_map(|(subject, pattern)| Rule::Match { subject, pattern }),
        ];
        leaf.prop_recursive(6, 48, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|r| Rule::Not(Box::new(r))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Rule::And),
                prop::collection::vec(inner, 2..4).prop_map(Rule::Or),
            ]
        })
    }

    proptest! {
        #[test]
        fn printed_rules_parse_back_equal(rule in arb_rule()) {
            let text = rule.to_string();
            let back = Rule::parse(&text);
            prop_assert!(back.is_ok(), "{text:?}: {:?}", back.err());
            prop_assert_eq!(back.ok(), Some(rule), "{}", text);
        }

        /// The fuzz property: whatever parses prints to text that parses to
        /// the same rule. Inputs are drawn from the language's own pieces.
        #[test]
        fn parse_print_parse_is_stable(
            words in prop::collection::vec(prop_oneof![
                Just("and".to_owned()), Just("or".to_owned()), Just("not".to_owned()),
                Just("(".to_owned()), Just(")".to_owned()), Just("@".to_owned()),
                Just("!".to_owned()), Just("role:admin".to_owned()),
                Just("'read':%(target.secret.read)s".to_owned()),
                Just("True:%(x)s".to_owned()), Just("rule:a".to_owned()),
                "[a-zA-Z0-9_:%()'\"@!.-]{1,12}",
            ], 0..12),
            glue in prop::collection::vec(prop_oneof![Just(""), Just(" "), Just("\t")], 12),
        ) {
            let mut text = String::new();
            for (w, g) in words.iter().zip(glue.iter().cycle()) {
                text.push_str(w);
                text.push_str(g);
            }
            if let Ok(rule) = Rule::parse(&text) {
                let printed = rule.to_string();
                let back = Rule::parse(&printed);
                prop_assert!(back.is_ok(), "{text:?} -> {printed:?}: {:?}", back.err());
                prop_assert_eq!(back.ok(), Some(rule), "{:?} -> {:?}", text, printed);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            if let Ok(rule) = Rule::parse(&text) {
                let printed = rule.to_string();
                prop_assert_eq!(Rule::parse(&printed).ok(), Some(rule));
            }
        }
    }
}
