//! How the report's values look in `latest.json`, for serde's derived code: numbers
//! rounded to six decimals (integers without a fraction), and ordered `(name, value)`
//! lists as JSON objects whose members keep their order, so that reports diff cleanly
//! from one run to the next.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};

/// The document: `value` with two-space indentation and a final newline.
pub fn pretty<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a report always serializes");
    text.push('\n');
    text
}

/// A number as the report writes it: integers without a fraction, others rounded to
/// six decimals, non-finite values as `null` (JSON has no NaN or infinity).
pub fn number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if !value.is_finite() {
        return serializer.serialize_none();
    }
    let rounded: f64 = format!("{value:.6}").parse().unwrap_or(*value);
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        serializer.serialize_i64(rounded as i64)
    } else {
        serializer.serialize_f64(rounded)
    }
}

/// A list of numbers, each as [`number`] writes it.
pub fn numbers<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    /// One number of the list.
    struct Number(f64);
    impl serde::Serialize for Number {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            number(&self.0, serializer)
        }
    }
    let mut seq = serializer.serialize_seq(Some(values.len()))?;
    for value in values {
        seq.serialize_element(&Number(*value))?;
    }
    seq.end()
}

/// `(name, value)` pairs as a JSON object, members in the list's order
/// (`#[serde(with = "json::ordered_object")]`).
pub mod ordered_object {
    use super::*;

    /// Writes the pairs as an object.
    pub fn serialize<S: Serializer>(
        pairs: &[(String, String)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(pairs.iter().map(|(name, value)| (name, value)))
    }

    /// Reads an object's members in the order they appear.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        deserializer.deserialize_map(PairsVisitor)
    }

    struct PairsVisitor;

    impl<'de> Visitor<'de> for PairsVisitor {
        type Value = Vec<(String, String)>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("an object of strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(pair) = map.next_entry()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        #[serde(serialize_with = "number")]
        one: f64,
        #[serde(serialize_with = "numbers")]
        many: Vec<f64>,
        #[serde(with = "ordered_object")]
        facts: Vec<(String, String)>,
        text: String,
    }

    #[test]
    fn numbers_strings_and_ordered_objects() {
        let sample = Sample {
            one: 3.0,
            many: vec![-2.5, 1.0 / 3.0, 2.000_000_1, f64::NAN, 7525.0],
            facts: vec![
                ("z".into(), "last letter".into()),
                ("a".into(), "first".into()),
            ],
            text: "a \"quoted\" \\ path\nnext\ttab\u{1} µs – ok".into(),
        };
        let text = pretty(&sample);
        assert_eq!(
            text,
            "{\n  \"one\": 3,\n  \"many\": [\n    -2.5,\n    0.333333,\n    2,\n    null,\n    \
             7525\n  ],\n  \"facts\": {\n    \"z\": \"last letter\",\n    \"a\": \"first\"\n  \
             },\n  \"text\": \"a \\\"quoted\\\" \\\\ path\\nnext\\ttab\\u0001 µs – ok\"\n}\n"
        );
        let back: Sample = serde_json::from_str(&text.replace("null", "1")).unwrap();
        assert_eq!(back.facts, sample.facts, "members read back in order");
        assert_eq!(back.many[1], 0.333333);
    }
}
