//! What a JSON text will cost once parsed: an upper bound, read from the bytes alone
//! (no allocation, one pass, fed chunk by chunk), of the memory
//! `serde_json::from_slice::<serde_json::Value>` allocates for it. Pure: no I/O.
//!
//! Why: a JSON text's parsed form is not a fixed multiple of its size. `{"a":0}` is
//! 7 bytes and a `Value` object of one B-tree leaf (632 bytes); `[{},{},…]` costs
//! 32 bytes of array slot per 3 bytes of text. Memory budgets (`--max-inflight-body`,
//! `--fhir-max-bytes`) count this bound, so a body is refused *before* it is parsed.
//!
//! The cost model, each term an upper bound (calibrated by `tests/json_cost.rs`, which
//! parses worst-case texts under a counting allocator):
//! - an array of n ≥ 1 elements: a `Vec<Value>` of capacity max(4, n rounded up to a
//!   power of two) (it grows by doubling); while the largest array doubles, its old
//!   buffer is alive too (one such copy at a time: parsing is sequential);
//! - an object of n ≥ 1 members: a `BTreeMap<String, Value>`: one leaf up to 11
//!   members, beyond that at most 1 + (n − 1) / 5 nodes (every node but the root holds
//!   at least 5 entries under insertion only) of the larger, internal, size;
//! - a string (key or value) of n ≥ 1 bytes between its quotes: one allocation of n
//!   bytes (escapes only shorten it);
//! - the parser's scratch buffer (escaped strings, long numbers): three times the longest
//!   such token (doubling growth, old and new buffer alive while it grows);
//! - every allocation rounded up to the allocator's size class (mimalloc: exact up to
//!   64 bytes in steps of 8, then four classes per doubling);
//! - nesting past serde_json's recursion limit (128) ends the parse with an error, so
//!   nothing after it is counted.
//!
//! Scalars (numbers, `true`, `false`, `null`) live inside their parent's slot: they cost
//! nothing of their own.

use std::mem::size_of;

use serde_json::Value;

/// Bytes of one `Value` (an array slot, or a B-tree value).
const VALUE: usize = size_of::<Value>();
/// Entries of a B-tree node (std's `BTreeMap`, B = 6).
const NODE_CAPACITY: usize = 11;
/// A non-root B-tree node holds at least this many entries.
const NODE_MIN: usize = 5;
/// A B-tree leaf: parent pointer, keys, values, parent index and length (u16 each).
const LEAF: usize = (8 + NODE_CAPACITY * (size_of::<String>() + VALUE) + 4).next_multiple_of(8);
/// An internal node: a leaf plus its child pointers.
const INTERNAL: usize = LEAF + (NODE_CAPACITY + 1) * 8;
/// serde_json fails on the 128th level of nesting.
const MAX_DEPTH: usize = 128;
/// A `Vec` of `Value`s starts at this capacity (std's minimum non-zero capacity).
const MIN_VEC: usize = 4;

/// The allocator's size class of a request of `bytes` (mimalloc's bins: multiples of 8
/// up to 64 bytes, then four classes per doubling). Other allocators' classes are as
/// fine or finer.
pub const fn size_class(bytes: usize) -> usize {
    if bytes == 0 {
        return 0;
    }
    let w = bytes.next_multiple_of(8);
    if w <= 64 {
        return w;
    }
    let top = usize::BITS - 1 - (w - 1).leading_zeros();
    w.next_multiple_of(1 << (top - 2))
}

/// The cost of a parsed array of `n` elements (its slots).
fn array_cost(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        size_class(VALUE * n.next_power_of_two().max(MIN_VEC))
    }
}

/// The cost of a parsed object of `n` members (its B-tree nodes; keys are strings).
fn object_cost(n: usize) -> usize {
    match n {
        0 => 0,
        1..=NODE_CAPACITY => size_class(LEAF),
        _ => (1 + (n - 1) / NODE_MIN) * size_class(INTERNAL),
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    object: bool,
    /// Elements (arrays: commas + 1 once a value started) or members (objects: keys).
    count: usize,
    nonempty: bool,
    /// Objects: the next string is a key (after `{` or `,`).
    expect_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexer {
    /// Between tokens.
    Between,
    /// Inside a string; `escape`: the previous byte was a backslash.
    InString { escape: bool },
    /// Inside a number or literal.
    InScalar,
    /// Past serde_json's nesting limit: the parse ends there.
    Stopped,
}

/// The running bound for a JSON text fed in chunks.
#[derive(Debug, Clone)]
pub struct Expansion {
    lexer: Lexer,
    stack: [Frame; MAX_DEPTH],
    depth: usize,
    /// Cost of the containers and strings already closed.
    closed: usize,
    /// Length of the current string (between its quotes) or scalar.
    token: usize,
    token_escaped: bool,
    /// Longest token that goes through the scratch buffer.
    longest_scratch: usize,
    /// Largest array slot buffer, for the copy alive while it doubles.
    largest_array: usize,
}

impl Default for Expansion {
    fn default() -> Self {
        Expansion {
            lexer: Lexer::Between,
            stack: [Frame::default(); MAX_DEPTH],
            depth: 0,
            closed: 0,
            token: 0,
            token_escaped: false,
            longest_scratch: 0,
            largest_array: 0,
        }
    }
}

impl Expansion {
    pub fn new() -> Self {
        Self::default()
    }

    /// Read the next bytes of the text.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            match self.lexer {
                Lexer::Stopped => return,
                Lexer::InString { escape } => {
                    // The common case, a run of plain bytes, in one step.
                    let rest = &bytes[i..];
                    let run = if escape {
                        0
                    } else {
                        rest.iter()
                            .position(|&b| b == b'"' || b == b'\\')
                            .unwrap_or(rest.len())
                    };
                    self.token += run;
                    i += run;
                    let Some(&b) = bytes.get(i) else { break };
                    if escape {
                        self.token += 1;
                        self.lexer = Lexer::InString { escape: false };
                    } else if b == b'\\' {
                        self.token += 1;
                        self.token_escaped = true;
                        self.lexer = Lexer::InString { escape: true };
                    } else {
                        self.end_string();
                    }
                    i += 1;
                }
                Lexer::InScalar => {
                    let b = bytes[i];
                    if is_scalar_byte(b) {
                        self.token += 1;
                        i += 1;
                    } else {
                        self.end_scalar();
                        // The byte is read again between tokens.
                    }
                }
                Lexer::Between => {
                    self.between(bytes[i]);
                    i += 1;
                }
            }
        }
    }

    fn between(&mut self, b: u8) {
        match b {
            // Colons: members are counted by their keys.
            b' ' | b'\t' | b'\n' | b'\r' | b':' => {}
            b'[' | b'{' => {
                self.value_starts();
                if self.depth == MAX_DEPTH {
                    self.lexer = Lexer::Stopped;
                    return;
                }
                self.stack[self.depth] = Frame {
                    object: b == b'{',
                    expect_key: b == b'{',
                    ..Frame::default()
                };
                self.depth += 1;
            }
            b']' | b'}' => {
                if self.depth > 0 {
                    self.depth -= 1;
                    let frame = self.stack[self.depth];
                    self.closed += self.container_cost(frame);
                }
            }
            // Commas count an array's elements; in an object a key comes next.
            b',' => {
                if let Some(top) = self.top() {
                    if top.object {
                        top.expect_key = true;
                    } else {
                        top.count += 1;
                    }
                }
            }
            b'"' => {
                // A key counts its object's member as soon as it starts.
                if let Some(top) = self.top()
                    && top.object
                    && top.expect_key
                {
                    top.count += 1;
                    top.expect_key = false;
                }
                self.value_starts();
                self.lexer = Lexer::InString { escape: false };
                self.token = 0;
                self.token_escaped = false;
            }
            _ => {
                self.value_starts();
                self.lexer = Lexer::InScalar;
                self.token = 1;
            }
        }
    }

    fn top(&mut self) -> Option<&mut Frame> {
        self.depth.checked_sub(1).map(|d| &mut self.stack[d])
    }

    /// A value (or a key) starts: the first one makes an array non-empty.
    fn value_starts(&mut self) {
        if let Some(top) = self.top()
            && !top.object
            && !top.nonempty
        {
            top.nonempty = true;
            top.count += 1;
        }
    }

    fn container_cost(&mut self, frame: Frame) -> usize {
        let cost = frame_cost(frame);
        if !frame.object {
            self.largest_array = self.largest_array.max(cost);
        }
        cost
    }

    fn end_string(&mut self) {
        self.closed += size_class(self.token);
        if self.token_escaped {
            self.longest_scratch = self.longest_scratch.max(self.token);
        }
        self.lexer = Lexer::Between;
    }

    fn end_scalar(&mut self) {
        self.longest_scratch = self.longest_scratch.max(self.token);
        self.lexer = Lexer::Between;
    }

    /// The bound for the text read so far, its open containers and token counted as
    /// if they ended here.
    pub fn bytes(&self) -> usize {
        let (token, longest_scratch) = match self.lexer {
            Lexer::InString { .. } if self.token_escaped => {
                (size_class(self.token), self.longest_scratch.max(self.token))
            }
            Lexer::InString { .. } => (size_class(self.token), self.longest_scratch),
            Lexer::InScalar => (0, self.longest_scratch.max(self.token)),
            Lexer::Between | Lexer::Stopped => (0, self.longest_scratch),
        };
        let mut open = 0;
        let mut largest_array = self.largest_array;
        for frame in &self.stack[..self.depth] {
            let cost = frame_cost(*frame);
            open += cost;
            if !frame.object {
                largest_array = largest_array.max(cost);
            }
        }
        self.closed + token + open + largest_array / 2 + 3 * size_class(longest_scratch)
    }
}

/// What a container costs once closed.
fn frame_cost(frame: Frame) -> usize {
    if frame.object {
        object_cost(frame.count)
    } else if frame.nonempty {
        array_cost(frame.count)
    } else {
        0
    }
}

/// Number and literal bytes (`-0.5e+3`, `true`, `null`); anything else ends the token.
fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

/// The bound for a whole text.
pub fn expansion(bytes: &[u8]) -> usize {
    let mut e = Expansion::new();
    e.feed(bytes);
    e.bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_mimallocs() {
        assert_eq!(size_class(0), 0);
        assert_eq!(size_class(1), 8);
        assert_eq!(size_class(64), 64);
        assert_eq!(size_class(65), 80);
        assert_eq!(size_class(632), 640);
        assert_eq!(size_class(728), 768);
        assert_eq!(size_class(1 << 20), 1 << 20);
    }

    #[test]
    fn counts_what_a_value_tree_holds() {
        assert_eq!(expansion(b"0"), 3 * 8);
        assert_eq!(expansion(b"[]"), 0);
        assert_eq!(expansion(b"{}"), 0);
        assert_eq!(expansion(b"[0]"), 128 + 64 + 3 * 8);
        assert_eq!(expansion(br#"{"a":0}"#), 640 + 8 + 3 * 8);
        assert_eq!(expansion(br#""abc""#), 8);
        // An escape only shortens the string; it goes through the scratch buffer.
        assert_eq!(expansion(br#""a\"b""#), 8 + 3 * 8);
        // Commas and colons inside strings are text.
        assert_eq!(expansion(br#"["a,b:c"]"#), 128 + 64 + 8);
    }

    #[test]
    fn chunks_give_the_same_bound_as_the_whole() {
        let text = br#"{"a": [1, 2.5e3, "x\"y", {"b": null}], "c\\": "dd", "e": [[], {}]}"#;
        let whole = expansion(text);
        for split in 0..text.len() {
            let mut e = Expansion::new();
            e.feed(&text[..split]);
            e.feed(&text[split..]);
            assert_eq!(e.bytes(), whole, "split at {split}");
        }
    }

    #[test]
    fn an_open_text_is_counted_as_if_closed() {
        let mut e = Expansion::new();
        e.feed(br#"[{"a":1},{"b""#);
        assert!(e.bytes() >= expansion(br#"[{"a":1},{"b":0}]"#) - 3 * 8);
        // The bound never falls as more text comes.
        let mut last = 0;
        let mut e = Expansion::new();
        for b in br#"{"k": [1, {"x": "yy"}, [3, 4], "zzz"], "w": {}}"#.iter() {
            e.feed(&[*b]);
            assert!(e.bytes() >= last);
            last = e.bytes();
        }
    }

    proptest::proptest! {
        /// Any bytes (JSON or not): no panic, the same bound whatever the chunking, and
        /// a bound that never falls as more bytes come.
        #[test]
        fn any_bytes_any_chunks(text in proptest::collection::vec(
            proptest::sample::select(b"{}[]\",:\\ 0a-.e".to_vec()), 0..300),
            split in 0usize..300) {
            let split = split.min(text.len());
            let mut e = Expansion::new();
            e.feed(&text[..split]);
            let partial = e.bytes();
            e.feed(&text[split..]);
            proptest::prop_assert!(e.bytes() >= partial);
            proptest::prop_assert_eq!(e.bytes(), expansion(&text));
        }

        /// For any JSON value, the bound covers the slots and nodes a `Value` tree has
        /// (a floor: the allocator-counted calibration is `tests/json_cost.rs`).
        #[test]
        fn valid_json_is_bounded_below_by_its_node_count(v in json_value()) {
            let text = serde_json::to_vec(&v).unwrap();
            proptest::prop_assert!(expansion(&text) >= nodes_floor(&v));
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z\\\"]{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 200, 12, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..12).prop_map(Value::from),
                proptest::collection::btree_map("[a-z]{0,6}", inner, 0..14)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What any `Value` tree of `v`'s shape must hold: each non-empty array's slots,
    /// each non-empty object's leaf.
    fn nodes_floor(v: &Value) -> usize {
        match v {
            Value::Array(a) if !a.is_empty() => {
                VALUE * a.len() + a.iter().map(nodes_floor).sum::<usize>()
            }
            Value::Object(o) if !o.is_empty() => LEAF + o.values().map(nodes_floor).sum::<usize>(),
            _ => 0,
        }
    }

    #[test]
    fn nesting_past_the_parsers_limit_is_not_counted() {
        let deep = "[".repeat(10_000);
        let limit = expansion("[".repeat(MAX_DEPTH + 1).as_bytes());
        assert_eq!(expansion(deep.as_bytes()), limit);
    }
}
