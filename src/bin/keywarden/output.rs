//! Output as the openstack client prints it: `-f table|value|json|shell`
//! and `-c COLUMN` selection, for one object (a Field/Value table) or a list.

use std::io;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::ser::{Formatter, PrettyFormatter};

/// One printed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Int(u64),
    Null,
}

impl Cell {
    pub fn opt(v: Option<impl ToString>) -> Cell {
        v.map_or(Cell::Null, |v| Cell::Text(v.to_string()))
    }

    fn plain(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Null => "None".to_owned(),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Text(t) => s.serialize_str(t),
            Cell::Int(n) => s.serialize_u64(*n),
            Cell::Null => s.serialize_unit(),
        }
    }
}

/// An object's fields in display order.
pub type Record = Vec<(&'static str, Cell)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Value,
    Json,
    Shell,
}

/// Keeps the selected columns, in the order of the record. An unknown
/// column is an error, as cliff reports it.
fn select(fields: &[&'static str], columns: &[String]) -> Result<Vec<usize>, String> {
    if columns.is_empty() {
        return Ok((0..fields.len()).collect());
    }
    let unknown: Vec<&String> = columns
        .iter()
        .filter(|c| !fields.contains(&c.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "No recognized column names in {:?}. Recognized columns are {:?}.",
            unknown, fields
        ));
    }
    Ok((0..fields.len())
        .filter(|&i| columns.iter().any(|c| c == fields[i]))
        .collect())
}

/// Renders one object.
pub fn show(record: &Record, format: Format, columns: &[String]) -> Result<String, String> {
    let names: Vec<&'static str> = record.iter().map(|(n, _)| *n).collect();
    let keep = select(&names, columns)?;
    let rows: Vec<(&str, &Cell)> = keep.iter().map(|&i| (record[i].0, &record[i].1)).collect();
    Ok(match format {
        Format::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|(n, c)| vec![(*n).to_owned(), c.plain()])
                .collect();
            table(&["Field", "Value"], &body)
        }
        Format::Value => rows.iter().map(|(_, c)| c.plain() + "\n").collect(),
        Format::Json => json(&Object(rows), PrettyFormatter::with_indent(b"  "))?,
        Format::Shell => rows
            .iter()
            .map(|(n, c)| format!("{}={}\n", shell_name(n), shell_quote(&c.plain())))
            .collect(),
    })
}

/// Renders a list of objects with the same fields.
pub fn list(
    fields: &[&'static str],
    rows: &[Record],
    format: Format,
    columns: &[String],
) -> Result<String, String> {
    let keep = select(fields, columns)?;
    let headers: Vec<&str> = keep.iter().map(|&i| fields[i]).collect();
    let cells: Vec<Vec<&Cell>> = rows
        .iter()
        .map(|r| keep.iter().map(|&i| &r[i].1).collect())
        .collect();
    Ok(match format {
        Format::Table => {
            if rows.is_empty() {
                return Ok(String::new());
            }
            let body: Vec<Vec<String>> = cells
                .iter()
                .map(|r| r.iter().map(|c| c.plain()).collect())
                .collect();
            table(&headers, &body)
        }
        Format::Value => cells
            .iter()
            .map(|r| r.iter().map(|c| c.plain()).collect::<Vec<_>>().join(" ") + "\n")
            .collect(),
        Format::Json => {
            let objects: Vec<Object<'_>> = cells
                .iter()
                .map(|r| Object(headers.iter().copied().zip(r.iter().copied()).collect()))
                .collect();
            json(&objects, RowPerLine::default())?
        }
        Format::Shell => {
            return Err("the shell format shows one object; use -f value or json for lists".into());
        }
    })
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            for line in cell.lines() {
                widths[i] = widths[i].max(line.chars().count());
            }
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: &[&str]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("| {c}{} ", " ".repeat(w - c.chars().count())))
            .collect::<String>()
            + "|\n"
    };
    let mut out = rule.clone();
    out.push_str(&line(headers));
    out.push_str(&rule);
    for row in rows {
        let split: Vec<Vec<&str>> = row
            .iter()
            .map(|c| {
                if c.is_empty() {
                    vec![""]
                } else {
                    c.lines().collect()
                }
            })
            .collect();
        let height = split.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let cells: Vec<&str> = split
                .iter()
                .map(|l| l.get(k).copied().unwrap_or(""))
                .collect();
            out.push_str(&line(&cells));
        }
    }
    out.push_str(&rule);
    out
}

/// Fields as a JSON object, in display order (a JSON map of serde_json's
/// own would sort them).
struct Object<'a>(Vec<(&'a str, &'a Cell)>);

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, cell) in &self.0 {
            map.serialize_entry(name, cell)?;
        }
        map.end()
    }
}

/// `value` as JSON laid out by `formatter`, with a final newline.
fn json(value: &impl Serialize, formatter: impl Formatter) -> Result<String, String> {
    let mut out = Vec::new();
    value
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))
        .map_err(|e| e.to_string())?;
    out.push(b'\n');
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// A list's layout: one object per line, `{"Name": "x", "Bit length": 256}`.
#[derive(Default)]
struct RowPerLine {
    rows: bool,
}

impl Formatter for RowPerLine {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.rows = true;
        w.write_all(if first { b"\n  " } else { b",\n  " })
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.rows { b"\n]" } else { b"]" })
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// `Secret href` -> `secret_href`, as cliff's shell formatter names variables.
fn shell_name(n: &str) -> String {
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn shell_quote(v: &str) -> String {
    format!(
        "\"{}\"",
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
            .replace('`', "\\`")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        vec![
            ("Secret href", Cell::Text("http://x/v1/secrets/1".into())),
            ("Name", Cell::Null),
            ("Bit length", Cell::Int(256)),
        ]
    }

    #[test]
    fn formats_one_object() {
        let t = show(&rec(), Format::Table, &[]).unwrap();
        assert!(
            t.starts_with(
                "+-------------+-----------------------+\n| Field       | Value                 |\n"
            ),
            "{t}"
        );
        assert!(t.contains("| Name        | None                  |"), "{t}");
        assert_eq!(
            show(&rec(), Format::Value, &["Secret href".into()]).unwrap(),
            "http://x/v1/secrets/1\n"
        );
        assert_eq!(
            show(&rec(), Format::Json, &[]).unwrap(),
            "{\n  \"Secret href\": \"http://x/v1/secrets/1\",\n  \"Name\": null,\n  \"Bit length\": 256\n}\n"
        );
        assert_eq!(
            show(&rec(), Format::Shell, &["Bit length".into()]).unwrap(),
            "bit_length=\"256\"\n"
        );
        assert!(
            show(&rec(), Format::Value, &["Colour".into()])
                .unwrap_err()
                .contains("No recognized column")
        );
    }

    #[test]
    fn formats_lists() {
        let fields = ["Secret href", "Name", "Bit length"];
        let rows = vec![rec(), rec()];
        let v = list(
            &fields,
            &rows,
            Format::Value,
            &["Name".into(), "Bit length".into()],
        )
        .unwrap();
        assert_eq!(v, "None 256\nNone 256\n");
        assert_eq!(list(&fields, &[], Format::Json, &[]).unwrap(), "[]\n");
        assert_eq!(
            list(
                &fields,
                &rows,
                Format::Json,
                &["Name".into(), "Secret href".into()]
            )
            .unwrap(),
            "[\n  {\"Secret href\": \"http://x/v1/secrets/1\", \"Name\": null},\n  \
             {\"Secret href\": \"http://x/v1/secrets/1\", \"Name\": null}\n]\n"
        );
        assert!(list(&fields, &rows, Format::Shell, &[]).is_err());
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        // Quote, backslash and control characters are escaped (\b and \f by
        // their short forms); `/`, DEL and non-ASCII are written as they are.
        let name = "q\"b\\n\nr\rt\t\u{1}\u{8}\u{c}\u{1f}\u{7f}/é☃";
        let rec = vec![("Name", Cell::Text(name.into()))];
        let expected = "\"q\\\"b\\\\n\\nr\\rt\\t\\u0001\\b\\f\\u001f\u{7f}/é☃\"";
        assert_eq!(
            show(&rec, Format::Json, &[]).unwrap(),
            format!("{{\n  \"Name\": {expected}\n}}\n")
        );
        assert_eq!(
            list(&["Name"], &[rec], Format::Json, &[]).unwrap(),
            format!("[\n  {{\"Name\": {expected}}}\n]\n")
        );
    }
}
