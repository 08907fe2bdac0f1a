//! Canonical JSON: the bytes airlock signs and hashes (the bundle manifest,
//! the provenance statement).
//!
//! The form: object keys sorted by their UTF-8 bytes, no whitespace between
//! tokens, strings escaped as serde_json writes them (`"`, `\` and control
//! characters only; everything else as UTF-8), numbers as serde_json writes
//! them. For the documents airlock writes, whose keys are ASCII and whose
//! numbers are integers, this is exactly RFC 8785 (the JSON
//! Canonicalization Scheme): byte order and UTF-16 order agree on ASCII, and
//! integers have one spelling. It is not a general JCS implementation: a
//! float would keep serde_json's spelling.

use serde_json::Value;

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// The canonical bytes of anything that serializes to JSON.
pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    Ok(to_vec(&serde_json::to_value(value)?))
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).expect("strings serialize"));
                out.push(b':');
                write(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("scalars serialize")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_sorted_nested_no_whitespace() {
        let value = serde_json::json!({
            "b": [3, {"z": null, "a": true}],
            "a": "x\"y\n",
            "B": 1
        });
        assert_eq!(
            String::from_utf8(to_vec(&value)).unwrap(),
            r#"{"B":1,"a":"x\"y\n","b":[3,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn rfc_8785_example_with_integers() {
        // The shape of RFC 8785's sorting example, integers only.
        let value: Value =
            serde_json::from_str(r#"{ "numbers": [333333333, 4, 2e0], "literals": [null, true, false], "string": "€$\u000f\nA'B\"\\\\\"/" }"#)
                .unwrap();
        let text = String::from_utf8(to_vec(&value)).unwrap();
        assert!(
            text.starts_with(r#"{"literals":[null,true,false],"numbers":[333333333,4,"#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""string":"€$\u000f\nA'B\"\\\\\"/"}"#),
            "{text}"
        );
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~é€\n]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parses_back_to_the_same_value_and_is_a_fixed_point(value in json()) {
            let bytes = to_vec(&value);
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(&back, &value);
            prop_assert!(!bytes.contains(&b' ') || value.to_string().contains(' '));
            prop_assert_eq!(to_vec(&back), bytes);
        }
    }
}
