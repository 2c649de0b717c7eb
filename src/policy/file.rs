//! Reading Barbican's policy file: a flat mapping from rule name to rule
//! text, as YAML (`policy.yaml`) or JSON (the older `policy.json`).
//!
//! Only the flat subset a policy file needs is read, and anything a real
//! YAML parser would read differently is refused rather than guessed at:
//! one `key: value` per line at column 0, `#` comments, blank lines, a
//! leading `---`, keys and values bare, `'single'` (with `''` for a quote) or
//! `"double"` quoted (with JSON-style escapes). A bare value may not start
//! with a YAML indicator such as `@`, `!`, `&` or `*`: quote those. A file
//! whose first non-blank character is `{` is read as a JSON object of strings.
//! Duplicate names are refused (YAML and JSON loaders keep the last one
//! silently, which hides typos).

use std::collections::HashSet;

use crate::error::{Error, Result};

/// One `name: rule` pair and the line it started on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) text: String,
    pub(super) line: usize,
}

pub(super) fn parse_policy_file(text: &str) -> Result<Vec<Entry>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let entries = if text.trim_start().starts_with('{') {
        parse_json(text)?
    } else {
        parse_yaml(text)?
    };
    let mut seen = HashSet::new();
    for entry in &entries {
        if entry.name.is_empty() {
            return Err(at_line(entry.line, "rule name is empty"));
        }
        if !seen.insert(entry.name.as_str()) {
            let msg = format!("rule `{}` is defined twice", entry.name);
            return Err(at_line(entry.line, msg));
        }
    }
    Ok(entries)
}

/// Double-quoted YAML (and JSON) text for `s`: what [`parse_policy_file`]
/// reads back to `s`.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn parse_yaml(text: &str) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut document_started = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim_end();
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if content == "---" && !document_started && entries.is_empty() {
            document_started = true;
            continue;
        }
        if trimmed.len() != content.len() {
            let msg = "indented line: put each `name: rule` on one line at column 0";
            return Err(at_line(line, msg));
        }
        let mut cursor = Cursor::new(content, line);
        let name = cursor.yaml_key()?;
        let text = cursor.yaml_value()?;
        entries.push(Entry { name, text, line });
    }
    Ok(entries)
}

fn parse_json(text: &str) -> Result<Vec<Entry>> {
    let mut cursor = Cursor::new(text, 1);
    cursor.skip_json_ws();
    cursor.expect('{')?;
    let mut entries = Vec::new();
    cursor.skip_json_ws();
    if !cursor.eat('}') {
        loop {
            cursor.skip_json_ws();
            let line = cursor.line;
            let name = cursor.json_string()?;
            cursor.skip_json_ws();
            cursor.expect(':')?;
            cursor.skip_json_ws();
            if cursor.peek() == Some('[') {
                let msg = "list-of-lists rules are not supported: write the rule as a string";
                return Err(at_line(cursor.line, msg));
            }
            let text = cursor.json_string()?;
            entries.push(Entry { name, text, line });
            cursor.skip_json_ws();
            if cursor.eat(',') {
                continue;
            }
            cursor.expect('}')?;
            break;
        }
    }
    cursor.skip_json_ws();
    if let Some(c) = cursor.peek() {
        return Err(at_line(
            cursor.line,
            format!("unexpected `{c}` after the JSON object"),
        ));
    }
    Ok(entries)
}

/// Characters that may not start a YAML plain scalar (or change its meaning).
const YAML_INDICATORS: &[char] = &[
    '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
];

struct Cursor<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, line: usize) -> Self {
        Cursor { rest: text, line }
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        match self.peek() {
            Some(found) if found == c => {
                self.bump();
                Ok(())
            }
            Some(found) => Err(at_line(
                self.line,
                format!("expected `{c}`, found `{found}`"),
            )),
            None => Err(at_line(self.line, format!("expected `{c}`, found the end"))),
        }
    }

    fn skip_blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    fn skip_json_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n')) {
            self.bump();
        }
    }

    /// A mapping key and the `:` after it.
    fn yaml_key(&mut self) -> Result<String> {
        let key = match self.peek() {
            Some('"') => self.double_quoted()?,
            Some('\'') => self.single_quoted()?,
            Some(c) if YAML_INDICATORS.contains(&c) => {
                let msg = format!("a bare rule name cannot start with `{c}`: quote it");
                return Err(at_line(self.line, msg));
            }
            _ => {
                // A plain key ends at the first `: ` (or `:` ending the line);
                // a `:` inside, as in `secret:get`, belongs to it.
                let end = plain_key_end(self.rest)
                    .ok_or_else(|| at_line(self.line, "expected `name: rule`"))?;
                let key = self.rest[..end].trim_end();
                if key.contains(" #") {
                    return Err(at_line(self.line, "expected `name: rule`"));
                }
                self.rest = &self.rest[end..];
                key.to_owned()
            }
        };
        self.skip_blanks();
        if !self.eat(':') {
            return Err(at_line(self.line, "expected `:` after the rule name"));
        }
        if !(self.rest.is_empty() || self.rest.starts_with([' ', '\t'])) {
            return Err(at_line(self.line, "expected a space after `:`"));
        }
        self.skip_blanks();
        Ok(key)
    }

    /// The value up to the end of the line, then only a comment may follow.
    fn yaml_value(&mut self) -> Result<String> {
        let value = match self.peek() {
            None | Some('#') => {
                // YAML reads this as null, and oslo treats a null rule as
                // "always allow": too surprising to accept unspelled.
                let msg = "rule text is missing (write \"\" if the rule should always pass)";
                return Err(at_line(self.line, msg));
            }
            Some('"') => self.double_quoted()?,
            Some('\'') => self.single_quoted()?,
            Some(c) if YAML_INDICATORS.contains(&c) => {
                let msg = format!("a bare rule cannot start with `{c}`: quote the rule");
                return Err(at_line(self.line, msg));
            }
            Some(c) if c.is_ascii_digit() || c == '.' || c == '+' => {
                // YAML would read `1:20` as a number (sexagesimal).
                let msg = "a bare rule cannot start with a digit, `.` or `+`: quote the rule";
                return Err(at_line(self.line, msg));
            }
            Some(_) => {
                let end = self.rest.find(" #").unwrap_or(self.rest.len());
                let value = self.rest[..end].trim_end();
                if value.contains(": ") || value.ends_with(':') {
                    let msg = "a bare rule cannot contain `: ` or end with `:`: quote the rule";
                    return Err(at_line(self.line, msg));
                }
                self.rest = &self.rest[end..];
                value.to_owned()
            }
        };
        self.skip_blanks();
        if !(self.rest.is_empty() || self.rest.starts_with('#')) {
            return Err(at_line(self.line, "unexpected text after the rule"));
        }
        Ok(value)
    }

    /// `'...'` with `''` standing for one quote.
    fn single_quoted(&mut self) -> Result<String> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('\'') if self.eat('\'') => out.push('\''),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => return Err(at_line(self.line, "single-quoted text is not closed")),
            }
        }
    }

    /// `"..."` with backslash escapes; YAML's on one line and JSON's agree on
    /// the ones accepted here.
    fn double_quoted(&mut self) -> Result<String> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape()?),
                Some('\n') | None => {
                    return Err(at_line(self.line, "double-quoted text is not closed"));
                }
                Some(c) if c.is_control() && c != '\t' => {
                    let msg = "control character in quoted text: escape it";
                    return Err(at_line(self.line, msg));
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn json_string(&mut self) -> Result<String> {
        if self.peek() != Some('"') {
            return Err(at_line(self.line, "expected a double-quoted string"));
        }
        self.double_quoted()
    }

    fn escape(&mut self) -> Result<char> {
        let c = self.bump();
        Ok(match c {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('u') => {
                let high = self.hex4()?;
                if (0xD800..0xDC00).contains(&high) {
                    if !(self.eat('\\') && self.eat('u')) {
                        return Err(at_line(self.line, "unpaired surrogate in `\\u` escape"));
                    }
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(at_line(self.line, "unpaired surrogate in `\\u` escape"));
                    }
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    char::from_u32(code).ok_or_else(|| at_line(self.line, "bad `\\u` escape"))?
                } else {
                    char::from_u32(high).ok_or_else(|| at_line(self.line, "bad `\\u` escape"))?
                }
            }
            Some(other) => {
                let msg = format!("unsupported escape `\\{other}`");
                return Err(at_line(self.line, msg));
            }
            None => return Err(at_line(self.line, "text ends inside an escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .rest
            .get(..4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(digits) = digits else {
            return Err(at_line(self.line, "`\\u` needs four hex digits"));
        };
        self.rest = &self.rest[4..];
        u32::from_str_radix(digits, 16).map_err(|_| at_line(self.line, "bad `\\u` escape"))
    }
}

/// Where a plain YAML key ends: the first `:` followed by a blank or the end.
fn plain_key_end(s: &str) -> Option<usize> {
    s.match_indices(':')
        .map(|(i, _)| i)
        .find(|&i| matches!(s.as_bytes().get(i + 1), None | Some(b' ' | b'\t')))
}

fn at_line(line: usize, what: impl std::fmt::Display) -> Error {
    Error::invalid("policy", format!("policy file line {line}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_policy_file(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .into_iter()
            .map(|e| (e.name, e.text))
            .collect()
    }

    fn refused(text: &str) -> String {
        parse_policy_file(text)
            .expect_err(text)
            .context()
            .to_owned()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn yaml_forms() {
        let text = "\
---
# Barbican policy overrides
\"secret:get\": \"rule:admin\"   # only admins

'secret:put': 'rule:admin or ''x'':%(k)s'
secret:delete: rule:secret_project_admin or rule:secret_project_creator
\"secrets:post\": ''
quoted:  \"a\\\"b\\\\c\\u00e9\"
";
        assert_eq!(
            pairs(text),
            vec![
                kv("secret:get", "rule:admin"),
                kv("secret:put", "rule:admin or 'x':%(k)s"),
                kv(
                    "secret:delete",
                    "rule:secret_project_admin or rule:secret_project_creator"
                ),
                kv("secrets:post", ""),
                kv("quoted", "a\"b\\cé"),
            ]
        );
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("# nothing\n\n"), vec![]);
        assert_eq!(pairs("a: role:x#y\r\n"), vec![kv("a", "role:x#y")]);
    }

    #[test]
    fn line_numbers_are_reported() {
        let entries = parse_policy_file("# c\n\na: rule:b\nb: '@'\n").unwrap();
        assert_eq!(entries[0].line, 3);
        assert_eq!(entries[1].line, 4);
        assert!(refused("a: '@'\nb: @\n").starts_with("policy file line 2:"));
    }

    #[test]
    fn yaml_refusals() {
        assert!(refused("a:\n").contains("missing"));
        assert!(refused("a: # nothing\n").contains("missing"));
        assert!(refused("a: @\n").contains("quote"));
        assert!(refused("a: !\n").contains("quote"));
        assert!(refused("a: 1:20\n").contains("digit"));
        assert!(refused("  a: '@'\n").contains("indented"));
        assert!(refused("a: rule:x or\n  rule:y\n").contains("indented"));
        assert!(refused("a: 'x' y\n").contains("unexpected text"));
        assert!(refused("a: 'x\n").contains("not closed"));
        assert!(refused("a: \"x\n").contains("not closed"));
        assert!(refused("a: \"\\q\"\n").contains("escape"));
        assert!(refused("a: b: c\n").contains("quote the rule"));
        assert!(refused("just text\n").contains("name: rule"));
        assert!(refused("a:b\n").contains("name: rule"));
        assert!(refused("a: '@'\na: '!'\n").contains("twice"));
        assert!(refused("'': '@'\n").contains("empty"));
        assert!(refused("- a\n").contains("cannot start"));
        assert!(refused("---\n---\n").contains("cannot start"));
    }

    #[test]
    fn json_forms() {
        let text = r#"{
            "secret:get": "rule:admin",
            "x": "'read':%(target.secret.read)s \u00e9\ud83d\ude00"
        }"#;
        assert_eq!(
            pairs(text),
            vec![
                kv("secret:get", "rule:admin"),
                kv("x", "'read':%(target.secret.read)s é😀"),
            ]
        );
        assert_eq!(pairs("{}"), vec![]);
        assert_eq!(pairs(" \n{ } \n"), vec![]);
        let entries = parse_policy_file("{\n\"a\": \"@\",\n\"b\": \"!\"}").unwrap();
        assert_eq!((entries[0].line, entries[1].line), (2, 3));
    }

    #[test]
    fn json_refusals() {
        assert!(refused(r#"{"a": [["role:admin"]]}"#).contains("list-of-lists"));
        assert!(refused(r#"{"a": "@",}"#).contains("double-quoted"));
        assert!(refused(r#"{"a": "@"} x"#).contains("after the JSON"));
        assert!(refused(r#"{"a" "@"}"#).contains("expected `:`"));
        assert!(refused(r#"{"a": 1}"#).contains("double-quoted"));
        assert!(refused(r#"{"a": "\ud800"}"#).contains("surrogate"));
        assert!(refused(r#"{"a": "\u12"}"#).contains("hex"));
        assert!(refused(r#"{"a": "@", "a": "!"}"#).contains("twice"));
        assert!(refused("{").contains("double-quoted"));
    }

    #[test]
    fn quote_reads_back() {
        for s in [
            "",
            "rule:a",
            "'read':%(k)s",
            "a\"b\\c",
            "tab\there",
            "nl\nx",
            "\u{1}",
        ] {
            let text = format!("{}: {}\n", quote("k"), quote(s));
            assert_eq!(pairs(&text), vec![kv("k", s)], "{text:?}");
            let json = format!("{{{}: {}}}", quote("k"), quote(s));
            assert_eq!(pairs(&json), vec![kv("k", s)], "{json:?}");
        }
    }
}
