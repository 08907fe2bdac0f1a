//! A small encoder for GVariant's serialization format, normal form, for
//! the handful of types ostree's objects use (`y u t s v a() {}` and
//! tuples of them). Written against GLib's specification ("GVariant
//! Serialisation Format", Ryan Lortie) rather than taken from a crate: the
//! Rust GVariant crates are built for reading, and what ostree needs is
//! about a hundred lines whose output the tests compare with GLib's own
//! (through `ostree commit`, whose checksums hash these bytes).
//!
//! The rules, briefly:
//! - fixed-size values (`y` 1, `u` 4, `t` 8 bytes) are aligned to their
//!   size; strings end with a NUL; `ay` is the bytes themselves;
//! - a tuple lays its members out in order, each aligned; it ends with the
//!   end offset of every variable-size member but the last, in reverse
//!   order; a tuple of fixed-size members only is padded to its alignment;
//! - an array of fixed-size elements is their concatenation; of
//!   variable-size elements, the elements (each aligned) then the end
//!   offset of each, in order;
//! - framing offsets are 1, 2, 4 or 8 bytes wide: the smallest in which the
//!   whole container, offsets included, can be addressed;
//! - a variant is its value, a NUL, then the value's type string.
//!
//! Integers are written little-endian, the byte order of every ostree
//! repository in practice; ostree's own fields are big-endian on top of
//! that, which the caller does (see [`Value::be32`]).

/// A value to serialize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `y`
    Byte(u8),
    /// `u`
    U32(u32),
    /// `t`
    U64(u64),
    /// `s`: a string without NUL bytes.
    Str(String),
    /// `ay`
    Bytes(Vec<u8>),
    /// `(...)`
    Tuple(Vec<Value>),
    /// `aT`: the element type, then the elements (each of that type).
    Array(String, Vec<Value>),
    /// `{KV}`: a dictionary entry.
    Entry(Box<Value>, Box<Value>),
    /// `v`
    Variant(Box<Value>),
}

impl Value {
    /// A `u` whose bytes are `value` big-endian, as ostree stores uid, gid
    /// and mode (`GUINT32_TO_BE`).
    pub fn be32(value: u32) -> Value {
        Value::U32(u32::from_le_bytes(value.to_be_bytes()))
    }

    /// A `t` whose bytes are `value` big-endian (`GUINT64_TO_BE`).
    pub fn be64(value: u64) -> Value {
        Value::U64(u64::from_le_bytes(value.to_be_bytes()))
    }

    /// A string (`s`).
    pub fn str(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    /// This value's type string.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".to_owned(),
            Value::U32(_) => "u".to_owned(),
            Value::U64(_) => "t".to_owned(),
            Value::Str(_) => "s".to_owned(),
            Value::Bytes(_) => "ay".to_owned(),
            Value::Tuple(members) => {
                let inner: String = members.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Array(element, _) => format!("a{element}"),
            Value::Entry(key, value) => format!("{{{}{}}}", key.signature(), value.signature()),
            Value::Variant(_) => "v".to_owned(),
        }
    }

    /// The serialized bytes, in normal form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Byte(b) => out.push(*b),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Str(text) => {
                assert!(!text.contains('\0'), "a GVariant string holds no NUL");
                out.extend_from_slice(text.as_bytes());
                out.push(0);
            }
            Value::Bytes(bytes) => out.extend_from_slice(bytes),
            Value::Tuple(members) => write_tuple(members.iter(), &self.signature(), out),
            Value::Entry(key, value) => {
                write_tuple([&**key, &**value].into_iter(), &self.signature(), out)
            }
            Value::Array(element, items) => {
                debug_assert!(items.iter().all(|item| item.signature() == *element));
                let shape = Shape::of(element);
                let start = out.len();
                let mut ends = Vec::new();
                for item in items {
                    pad(out, start, shape.align);
                    item.write(out);
                    ends.push(out.len() - start);
                }
                if shape.fixed.is_none() {
                    write_offsets(out, start, &ends);
                }
            }
            Value::Variant(value) => {
                value.write(out);
                out.push(0);
                out.extend_from_slice(value.signature().as_bytes());
            }
        }
    }
}

/// Members of a tuple (or dictionary entry) with signature `signature`.
fn write_tuple<'a>(members: impl Iterator<Item = &'a Value>, signature: &str, out: &mut Vec<u8>) {
    let start = out.len();
    let members: Vec<&Value> = members.collect();
    let mut ends = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let shape = Shape::of(&member.signature());
        pad(out, start, shape.align);
        member.write(out);
        if shape.fixed.is_none() && index + 1 != members.len() {
            ends.push(out.len() - start);
        }
    }
    let shape = Shape::of(signature);
    match shape.fixed {
        Some(size) => {
            // The unit tuple is one zero byte; others pad to their alignment.
            if members.is_empty() {
                out.push(0);
            }
            pad(out, start, shape.align);
            debug_assert_eq!(out.len() - start, size);
        }
        None => {
            ends.reverse();
            write_offsets(out, start, &ends);
        }
    }
}

/// Zero bytes until the container's length is a multiple of `align`.
fn pad(out: &mut Vec<u8>, start: usize, align: usize) {
    while !(out.len() - start).is_multiple_of(align) {
        out.push(0);
    }
}

/// Appends framing offsets to the container that began at `start`.
fn write_offsets(out: &mut Vec<u8>, start: usize, ends: &[usize]) {
    let body = out.len() - start;
    let width = offset_width(body, ends.len());
    for &end in ends {
        out.extend_from_slice(&(end as u64).to_le_bytes()[..width]);
    }
}

/// The width of each framing offset of a container whose body is `body`
/// bytes and which has `count` offsets.
fn offset_width(body: usize, count: usize) -> usize {
    for (width, max) in [
        (1, u8::MAX as u64),
        (2, u16::MAX as u64),
        (4, u32::MAX as u64),
    ] {
        if (body + width * count) as u64 <= max {
            return width;
        }
    }
    8
}

/// Alignment and (for fixed-size types) size of a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    align: usize,
    fixed: Option<usize>,
}

impl Shape {
    /// The shape of one complete type string.
    fn of(signature: &str) -> Shape {
        let (shape, rest) = Shape::parse(signature.as_bytes());
        assert!(rest.is_empty(), "one complete type expected: {signature}");
        shape
    }

    /// The shape of the first complete type in `sig`, and what follows it.
    fn parse(sig: &[u8]) -> (Shape, &[u8]) {
        let basic = |align, fixed| Shape { align, fixed };
        match sig.first() {
            Some(b'y') => (basic(1, Some(1)), &sig[1..]),
            Some(b'u') => (basic(4, Some(4)), &sig[1..]),
            Some(b't') => (basic(8, Some(8)), &sig[1..]),
            Some(b's') => (basic(1, None), &sig[1..]),
            Some(b'v') => (basic(8, None), &sig[1..]),
            Some(b'a') => {
                let (element, rest) = Shape::parse(&sig[1..]);
                (basic(element.align, None), rest)
            }
            Some(&open @ (b'(' | b'{')) => {
                let close = if open == b'(' { b')' } else { b'}' };
                let mut rest = &sig[1..];
                let (mut align, mut size, mut fixed) = (1, 0usize, true);
                while rest.first() != Some(&close) {
                    let (member, after) = Shape::parse(rest);
                    align = align.max(member.align);
                    match member.fixed {
                        Some(member_size) => {
                            size = size.next_multiple_of(member.align) + member_size
                        }
                        None => fixed = false,
                    }
                    rest = after;
                }
                let fixed = fixed.then(|| {
                    if size == 0 {
                        1
                    } else {
                        size.next_multiple_of(align)
                    }
                });
                (basic(align, fixed), &rest[1..])
            }
            _ => panic!(
                "unsupported GVariant type {:?}",
                String::from_utf8_lossy(sig)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(value: &Value) -> String {
        hex::encode(value.to_bytes())
    }

    // Expected bytes: the specification's own examples, and the rest
    // worked by hand from its rules. The commit tests check the whole
    // encoder against GLib through `ostree commit`'s checksums.
    #[test]
    fn strings_and_byte_arrays() {
        assert_eq!(
            bytes(&Value::str("hello world")),
            "68656c6c6f20776f726c6400"
        );
        assert_eq!(bytes(&Value::Bytes(vec![1, 2, 3])), "010203");
        assert_eq!(bytes(&Value::Array("s".into(), vec![])), "");
    }

    #[test]
    fn the_specifications_examples() {
        // ('foo', -1) as (si): string, pad to 4, int, one offset (end of 'foo').
        let tuple = Value::Tuple(vec![Value::str("foo"), Value::U32(u32::MAX)]);
        assert_eq!(bytes(&tuple), "666f6f00ffffffff04");
        // ['hi', 'bye'] as as: elements, then their end offsets.
        let array = Value::Array("s".into(), vec![Value::str("hi"), Value::str("bye")]);
        assert_eq!(bytes(&array), "68690062796500 0307".replace(' ', ""));
        // {'a key': <'a string'>} as {sv}
        let entry = Value::Entry(
            Box::new(Value::str("a key")),
            Box::new(Value::Variant(Box::new(Value::str("a string")))),
        );
        assert_eq!(
            bytes(&entry),
            "61206b657900 0000 6120737472696e670000 73 06".replace(' ', "")
        );
        // (yu): fixed size, padded to its alignment.
        let fixed = Value::Tuple(vec![Value::Byte(7), Value::U32(1)]);
        assert_eq!(bytes(&fixed), "0700000001000000");
        // (uy): the trailing byte padded out to 8.
        let fixed = Value::Tuple(vec![Value::U32(1), Value::Byte(7)]);
        assert_eq!(bytes(&fixed), "0100000007000000");
        assert_eq!(bytes(&Value::Tuple(vec![])), "00");
    }

    #[test]
    fn big_endian_fields_are_stored_big_endian() {
        assert_eq!(bytes(&Value::be32(0o100644)), "000081a4");
        assert_eq!(bytes(&Value::be64(1)), "0000000000000001");
    }

    #[test]
    fn offsets_widen_with_the_container() {
        assert_eq!(offset_width(0, 0), 1);
        assert_eq!(offset_width(253, 2), 1);
        assert_eq!(offset_width(254, 2), 2);
        assert_eq!(offset_width(65_531, 2), 2);
        assert_eq!(offset_width(65_533, 2), 4);
        assert_eq!(offset_width(65_534, 1), 4);
        // 300 bytes of strings: two-byte offsets.
        let long = "x".repeat(299);
        let array = Value::Array("s".into(), vec![Value::Str(long)]);
        let out = array.to_bytes();
        assert_eq!(out.len(), 302);
        assert_eq!(&out[300..], &300u16.to_le_bytes());
    }

    #[test]
    fn shapes() {
        assert_eq!(
            Shape::of("(uuuusa(ayay))"),
            Shape {
                align: 4,
                fixed: None
            }
        );
        assert_eq!(Shape::of("(tuuuusa(ayay))").align, 8);
        assert_eq!(Shape::of("a{sv}").align, 8);
        assert_eq!(
            Shape::of("(yu)"),
            Shape {
                align: 4,
                fixed: Some(8)
            }
        );
        assert_eq!(
            Shape::of("(ty)"),
            Shape {
                align: 8,
                fixed: Some(16)
            }
        );
        assert_eq!(
            Shape::of("()"),
            Shape {
                align: 1,
                fixed: Some(1)
            }
        );
    }
}
