//! A small JSON writer for the machine-readable report (RFC 8259): values are built
//! as a tree and printed with two-space indentation. Object members keep the order
//! they were added in, so reports diff cleanly from one run to the next.

use std::fmt::Write;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number; non-finite values print as `null` (JSON has no NaN or infinity).
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// A string value.
    pub fn string(text: impl Into<String>) -> Self {
        Json::String(text.into())
    }

    /// A string, or `null`.
    pub fn optional_string(text: Option<&str>) -> Self {
        text.map_or(Json::Null, Json::string)
    }

    /// A number, or `null`.
    pub fn optional_number(value: Option<f64>) -> Self {
        value.map_or(Json::Null, Json::Number)
    }

    /// An object from `(name, value)` pairs.
    pub fn object<const N: usize>(members: [(&str, Json); N]) -> Self {
        Json::Object(
            members
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
        )
    }

    /// The document: the value, indented, with a final newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Json::Number(value) => write_number(out, *value),
            Json::String(text) => write_string(out, text),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    out.push_str(if index == 0 { "\n" } else { ",\n" });
                    indent(out, depth + 1);
                    item.write(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push(']');
            }
            Json::Object(members) if members.is_empty() => out.push_str("{}"),
            Json::Object(members) => {
                out.push('{');
                for (index, (name, value)) in members.iter().enumerate() {
                    out.push_str(if index == 0 { "\n" } else { ",\n" });
                    indent(out, depth + 1);
                    write_string(out, name);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Integers print without a fraction; other numbers with up to six decimals and no
/// trailing zeros.
fn write_number(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str("null");
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let text = format!("{value:.6}");
        out.push_str(text.trim_end_matches('0').trim_end_matches('.'));
    }
}

/// A string with the escapes RFC 8259 section 7 requires.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(Json::Null.to_pretty(), "null\n");
        assert_eq!(Json::Bool(true).to_pretty(), "true\n");
        assert_eq!(Json::Number(3.0).to_pretty(), "3\n");
        assert_eq!(Json::Number(-2.5).to_pretty(), "-2.5\n");
        assert_eq!(Json::Number(1.0 / 3.0).to_pretty(), "0.333333\n");
        assert_eq!(Json::Number(f64::NAN).to_pretty(), "null\n");
        assert_eq!(Json::optional_number(None).to_pretty(), "null\n");
        assert_eq!(Json::optional_string(Some("x")).to_pretty(), "\"x\"\n");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            Json::string("a \"quoted\" \\ path\nnext\ttab\u{1}").to_pretty(),
            "\"a \\\"quoted\\\" \\\\ path\\nnext\\ttab\\u0001\"\n"
        );
        assert_eq!(Json::string("µs – ok").to_pretty(), "\"µs – ok\"\n");
    }

    #[test]
    fn nested_values_are_indented_in_order() {
        let value = Json::object([
            ("b", Json::Number(1.0)),
            (
                "a",
                Json::Array(vec![Json::Null, Json::object([("x", Json::Bool(false))])]),
            ),
            ("empty", Json::Array(Vec::new())),
            ("none", Json::Object(Vec::new())),
        ]);
        assert_eq!(
            value.to_pretty(),
            "{\n  \"b\": 1,\n  \"a\": [\n    null,\n    {\n      \"x\": false\n    }\n  ],\n  \
             \"empty\": [],\n  \"none\": {}\n}\n"
        );
    }
}
