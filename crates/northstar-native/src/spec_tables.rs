//! Markdown tables of the specs in spec/, for the tests that check the Rust
//! constants against them (in `kernels::layout`, `kernels::log` and
//! `kernels::cartridge`), as `ts/testing/spec_tables.ts` does for the
//! TypeScript constants: prose and code drift apart, so every number the Rust
//! code shares with a spec table is read from that table, never typed again
//! by hand.
//!
//! Each check records what it compared in a `Report`: the names it checked
//! and every problem, with the spec line it came from, so one run lists every
//! disagreement instead of stopping at the first.

use std::collections::BTreeSet;

pub const FILE_FORMAT_V1: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/file_format_v1.md"
));
pub const COMMIT_RECORD_V0: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/commit_record_v0.md"
));
pub const CARTRIDGE_V1: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/cartridge_v1.md"
));

/// A markdown table and the heading of the section it is in ("2.1 Layout").
pub struct Table<'a> {
    pub section: &'a str,
    pub header: Vec<&'a str>,
    pub rows: Vec<Row<'a>>,
}

/// A table row: its 1-based line in the spec and its cells, trimmed.
pub struct Row<'a> {
    pub line: usize,
    pub cells: Vec<&'a str>,
}

impl<'a> Row<'a> {
    /// Cell `i`, or "" when the row is short.
    pub fn cell(&self, i: usize) -> &'a str {
        self.cells.get(i).copied().unwrap_or("")
    }
}

fn split_row(line: &str) -> Vec<&str> {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = t.strip_suffix('|').unwrap_or(t);
    t.split('|').map(str::trim).collect()
}

/// Every markdown table in `text`, with the section it belongs to.
pub fn parse_tables(text: &str) -> Vec<Table<'_>> {
    let mut tables: Vec<Table> = Vec::new();
    let mut section = "";
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            section = line.trim_start_matches('#').trim();
        }
        let t = line.trim();
        if !t.starts_with('|') {
            open = false;
            continue;
        }
        if !open {
            tables.push(Table {
                section,
                header: split_row(line),
                rows: Vec::new(),
            });
            open = true;
            continue;
        }
        if t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
            continue; // the |---|---| rule
        }
        if let Some(table) = tables.last_mut() {
            table.rows.push(Row {
                line: i + 1,
                cells: split_row(line),
            });
        }
    }
    tables
}

/// Tables whose header is exactly these columns (case-insensitive).
pub fn tables_with_header<'t, 'a>(tables: &'t [Table<'a>], columns: &[&str]) -> Vec<&'t Table<'a>> {
    tables
        .iter()
        .filter(|t| {
            t.header.len() == columns.len()
                && t.header
                    .iter()
                    .zip(columns)
                    .all(|(h, c)| h.eq_ignore_ascii_case(c))
        })
        .collect()
}

/// A row of a byte-layout table (`| Offset | Size | Constant | Field |`).
pub struct LayoutRow<'a> {
    pub line: usize,
    pub offset: Option<usize>,
    /// `None` for an end row (empty) or a size that depends on a count ("2 × count").
    pub size: Option<usize>,
    /// The constant's name, without backticks; "" when the cell is not one backticked name.
    pub name: &'a str,
    pub field: &'a str,
}

/// The rows of every byte-layout table of `tables`, table by table.
pub fn layout_tables<'a>(tables: &[Table<'a>]) -> Vec<(&'a str, Vec<LayoutRow<'a>>)> {
    tables_with_header(tables, &["Offset", "Size", "Constant", "Field"])
        .into_iter()
        .map(|t| {
            let rows = t
                .rows
                .iter()
                .map(|r| LayoutRow {
                    line: r.line,
                    offset: r.cell(0).parse().ok(),
                    size: r.cell(1).parse().ok(),
                    name: backticked(r.cell(2)).unwrap_or(""),
                    field: r.cell(3),
                })
                .collect();
            (t.section, rows)
        })
        .collect()
}

/// The text of `cell` when it is exactly one backticked span.
pub fn backticked(cell: &str) -> Option<&str> {
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.contains('`')).then_some(inner)
}

/// Every backticked span in `text`, in order.
pub fn spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The first backticked hexadecimal number in `text` (`0x4E534442`).
pub fn hex_u32(text: &str) -> Option<u32> {
    spans(text)
        .into_iter()
        .find_map(|s| u32::from_str_radix(s.strip_prefix("0x")?, 16).ok())
}

/// The first backticked span of four hexadecimal bytes in `text` (`42 44 53 4E`).
pub fn hex_bytes(text: &str) -> Option<[u8; 4]> {
    spans(text).into_iter().find_map(|s| {
        let b: Vec<u8> = s
            .split(' ')
            .map(|x| {
                if x.len() == 2 {
                    u8::from_str_radix(x, 16).ok()
                } else {
                    None
                }
            })
            .collect::<Option<_>>()?;
        b.try_into().ok()
    })
}

/// The quoted ASCII name of a magic in `text`: `("LOGR")`.
pub fn quoted_name(text: &str) -> Option<&str> {
    let start = text.find("(\"")? + 2;
    let len = text[start..].find("\")")?;
    Some(&text[start..start + len])
}

/// The unsigned integer right after `prefix` in `text` ("u16 = " in "u16 = 40").
pub fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// The values a field enumerates after its colon, up to a semicolon:
/// "page type: 1 meta, 2 branch" gives [(1, "meta"), (2, "branch")].
pub fn enumeration(field: &str) -> Vec<(u64, &str)> {
    let Some((_, list)) = field.split_once(':') else {
        return Vec::new();
    };
    let list = list.split(';').next().unwrap_or("");
    list.split(',')
        .filter_map(|item| {
            let (n, name) = item.trim().split_once(' ')?;
            Some((n.parse().ok()?, name.trim()))
        })
        .collect()
}

/// The first line of `text` that contains `needle`, with its 1-based number,
/// for numbers the spec states in prose; (0, "") when there is none.
pub fn line_with<'a>(text: &'a str, needle: &str) -> (usize, &'a str) {
    text.lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .map_or((0, ""), |(i, l)| (i + 1, l))
}

/// `BadHeaderChecksum` as the Rust constant's name, `BAD_HEADER_CHECKSUM`.
pub fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Names of the `pub const`s declared in a Rust source file, qualified by the
/// `pub mod` blocks they are in below `root` ("status::BAD_MAGIC"); those
/// outside `root` are left out. `root` "" is the file itself.
pub fn pub_consts(source: &str, root: &str) -> Vec<String> {
    let mut stack: Vec<(&str, usize)> = Vec::new();
    let mut names = Vec::new();
    for line in source.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if let Some(name) = t
            .strip_prefix("pub mod ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            stack.push((name, indent));
        } else if t == "}" && stack.last().is_some_and(|&(_, i)| i == indent) {
            stack.pop();
        } else if let Some(rest) = t.strip_prefix("pub const ") {
            let name = rest.split(':').next().unwrap_or("").trim();
            let path: Vec<&str> = stack.iter().map(|&(m, _)| m).collect();
            let path = path.join("::");
            let inner = if root.is_empty() {
                Some(path.as_str())
            } else if path == root {
                Some("")
            } else {
                path.strip_prefix(root).and_then(|p| p.strip_prefix("::"))
            };
            match inner {
                Some("") => names.push(name.to_owned()),
                Some(p) => names.push(format!("{p}::{name}")),
                None => {}
            }
        }
    }
    names
}

/// What a set of checks compared, and where the spec and the code disagree.
#[derive(Default)]
pub struct Report {
    /// Names of the Rust constants checked against the spec.
    pub checked: BTreeSet<String>,
    pub problems: Vec<String>,
}

impl Report {
    /// Records that `name` was checked, and a problem when `got` (the code's
    /// value) differs from `want` (the spec's).
    pub fn expect<T: PartialEq + std::fmt::Debug>(
        &mut self,
        name: &str,
        got: T,
        want: Option<T>,
        line: usize,
    ) {
        self.checked.insert(name.to_owned());
        match want {
            Some(want) if want == got => {}
            Some(want) => self.problem(
                line,
                format!("{name} is {got:?} in the code, {want:?} in the spec"),
            ),
            None => self.problem(line, format!("{name}: the spec's value could not be read")),
        }
    }

    pub fn problem(&mut self, line: usize, message: String) {
        self.problems.push(format!("spec line {line}: {message}"));
    }

    /// Fails the test with every problem found.
    pub fn assert_ok(&self, spec: &str) {
        assert!(
            self.problems.is_empty(),
            "{spec} and the Rust constants disagree:\n{}",
            self.problems.join("\n")
        );
    }

    /// Fails unless every constant named in `declared` was checked.
    pub fn assert_covers(&self, declared: &[String], file: &str) {
        let missing: Vec<&String> = declared
            .iter()
            .filter(|n| !self.checked.contains(*n))
            .collect();
        assert!(
            missing.is_empty(),
            "{file} declares constants no spec check covers: {missing:?}"
        );
    }
}

/// Checks one byte-layout table of the spec against the code's constants,
/// row by row: the table is the one whose first row names `code[0]`'s
/// constant, and it must list exactly `code`'s names, in order, at `code`'s
/// values, each row's offset plus size being the next row's offset.
pub fn check_layout(
    report: &mut Report,
    layouts: &[(&str, Vec<LayoutRow>)],
    code: &[(&str, usize)],
) {
    let first = code[0].0;
    let Some((section, rows)) = layouts
        .iter()
        .find(|(_, rows)| rows.first().is_some_and(|r| r.name == first))
    else {
        report.problem(0, format!("no layout table starts with `{first}`"));
        return;
    };
    for (i, &(name, value)) in code.iter().enumerate() {
        match rows.get(i) {
            Some(row) if row.name == name => report.expect(name, value, row.offset, row.line),
            Some(row) => report.problem(
                row.line,
                format!("§{section} names `{}` where the code has {name}", row.name),
            ),
            None => report.problem(
                rows.last().map_or(0, |r| r.line),
                format!("§{section} has no row for {name}"),
            ),
        }
    }
    for row in rows.iter().skip(code.len()) {
        report.problem(
            row.line,
            format!("§{section} names `{}`, which the code lacks", row.name),
        );
    }
    for pair in rows.windows(2) {
        if let (Some(offset), Some(size), Some(next)) =
            (pair[0].offset, pair[0].size, pair[1].offset)
        {
            if offset + size != next {
                report.problem(
                    pair[0].line,
                    format!(
                        "`{}` at {offset} + {size} is not the next row's offset {next}",
                        pair[0].name
                    ),
                );
            }
        }
    }
}

/// The row of `layouts` that names the constant `name`, in whichever table.
pub fn layout_row<'t, 'a>(
    layouts: &'t [(&'a str, Vec<LayoutRow<'a>>)],
    name: &str,
) -> Option<&'t LayoutRow<'a>> {
    layouts
        .iter()
        .flat_map(|(_, rows)| rows)
        .find(|row| row.name == name)
}

/// Checks the values `row`'s field enumerates ("1 meta, 2 branch") against
/// `code`'s (word, constant name, value): exactly as many, each word at the
/// code's value. `what` names them in a problem ("page types"); `value`
/// converts the spec's number to the constants' type.
pub fn check_enumeration<T: PartialEq + std::fmt::Debug + Copy>(
    report: &mut Report,
    row: &LayoutRow,
    what: &str,
    code: &[(&str, &str, T)],
    value: fn(u64) -> T,
) {
    let listed = enumeration(row.field);
    if listed.len() != code.len() {
        report.problem(
            row.line,
            format!("{what} {listed:?}, the code has {}", code.len()),
        );
    }
    for &(word, name, got) in code {
        let want = listed
            .iter()
            .find(|&&(_, w)| w == word)
            .map(|&(n, _)| value(n));
        report.expect(name, got, want, row.line);
    }
}

/// Checks the first status table (`| status | name | check |`) of `tables`
/// against the code's statuses, in check order: each row's name in backticks
/// is the constant's (`BadMagic` for `BAD_MAGIC`, recorded as
/// `status::BAD_MAGIC`) and its number the constant's value. `function`
/// names the function that returns them ("pageVerify") and `section` the
/// spec section the table should be in ("§2.3").
pub fn check_statuses<T: PartialEq + std::fmt::Debug + Copy + std::str::FromStr>(
    report: &mut Report,
    tables: &[Table],
    function: &str,
    section: &str,
    code: &[(&str, T)],
) {
    let Some(t) = tables_with_header(tables, &["status", "name", "check"])
        .into_iter()
        .next()
    else {
        report.problem(0, format!("no {function} status table ({section})"));
        return;
    };
    if t.rows.len() != code.len() {
        report.problem(
            t.rows[0].line,
            format!(
                "{} {function} statuses, the code has {}",
                t.rows.len(),
                code.len()
            ),
        );
    }
    for (&(name, value), row) in code.iter().zip(&t.rows) {
        if backticked(row.cell(1)).map(screaming_snake).as_deref() != Some(name) {
            report.problem(
                row.line,
                format!("status {:?} where the code has {name}", row.cell(1)),
            );
        }
        report.expect(
            &format!("status::{name}"),
            value,
            row.cell(0).parse().ok(),
            row.line,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables_with_their_sections_and_lines() {
        let text = "# A\n\n## 1.2 B\n\n| x | y |\n|---|---|\n| `X_OFFSET` | 2 × count |\n| 3 | |\ntext\n| c |\n";
        let tables = parse_tables(text);
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].section, "1.2 B");
        assert_eq!(tables[0].header, ["x", "y"]);
        assert_eq!(tables[0].rows.len(), 2);
        assert_eq!(tables[0].rows[0].line, 7);
        assert_eq!(tables[0].rows[0].cells, ["`X_OFFSET`", "2 × count"]);
        assert_eq!(tables[0].rows[1].cells, ["3", ""]);
        assert!(tables[1].rows.is_empty());
    }

    #[test]
    fn reads_the_numbers_of_a_field() {
        let field = "magic, the u32 `0x4C4F4752` (\"LOGR\"); on disk the bytes are `52 47 4F 4C`";
        assert_eq!(hex_u32(field), Some(0x4C4F_4752));
        assert_eq!(hex_bytes(field), Some([0x52, 0x47, 0x4F, 0x4C]));
        assert_eq!(quoted_name(field), Some("LOGR"));
        assert_eq!(number_after("header length, u16 = 40", "u16 = "), Some(40));
        assert_eq!(
            enumeration("record type, u16: 0 commit, 1 checkpoint; every other value is bad"),
            [(0, "commit"), (1, "checkpoint")]
        );
        assert_eq!(screaming_snake("BadHeaderChecksum"), "BAD_HEADER_CHECKSUM");
    }

    #[test]
    fn lists_pub_consts_below_a_module() {
        let source = "pub const A: u8 = 1;\npub mod m {\n    pub const B: u8 = 2;\n    pub mod status {\n        pub const C: u8 = 3;\n    }\n}\nconst D: u8 = 4;\n";
        assert_eq!(pub_consts(source, ""), ["A", "m::B", "m::status::C"]);
        assert_eq!(pub_consts(source, "m"), ["B", "status::C"]);
    }
}
