//! FHIR R4 resources as the model reads them (`dvt-model.md` §1, §2): typed, compact, and
//! parsed straight from JSON text, never through a `serde_json::Value` tree.
//!
//! Only the elements the model reads are kept; every other element is skipped unread
//! ([`IgnoredAny`]). Reading is lenient the way FHIR data in the wild needs: an element of
//! the wrong JSON type (a `code` that is a string, a `status` that is a number) is not an
//! error of the whole body, it is [`Field::Invalid`], and `record` decides what that means
//! (a malformed resource is skipped and counted, an unreadable date is noted). Only JSON
//! that is not JSON at all fails to parse.
//!
//! One struct serves every resource type, as one element name means one thing across
//! the types the model reads (`code`, `status`, `subject`, `effectiveDateTime`, ...).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string of the resource (owned: resources outlive the buffers of live FHIR pages).
pub type Text = Box<str>;

/// An element as found: absent, present with a JSON type FHIR does not give it, or read.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    #[default]
    Absent,
    /// Present, but not of the element's JSON type (JSON `null` included).
    Invalid,
    Value(T),
}

impl<T> Field<T> {
    /// The value, when read (consumes the field).
    pub fn into_value(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
    pub fn get(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
    pub fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }
    pub fn is_invalid(&self) -> bool {
        matches!(self, Field::Invalid)
    }
}

impl Field<Text> {
    pub fn as_str(&self) -> Option<&str> {
        self.get().map(|s| &**s)
    }
}

impl<T> Field<Vec<T>> {
    /// The elements (none when absent or invalid).
    pub fn items(&self) -> &[T] {
        self.get().map_or(&[], Vec::as_slice)
    }
}

/// A JSON value read leniently into `Self`: each hook returns `None` for a JSON type the
/// element does not take, after consuming the value.
pub trait Lenient<'de>: Sized {
    /// Read, but holding nothing (`{}` as a Coding): a list does not keep it, as the
    /// model reads nothing from it and degenerate text of such elements would otherwise
    /// cost memory by the thousand.
    fn is_void(&self) -> bool {
        false
    }
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    /// An integer that fits `i64` (serde_json gives negative integers this way); the
    /// same as any number unless the element tells integers apart.
    fn from_i64(v: i64) -> Option<Self> {
        Self::from_f64(v as f64)
    }
    /// A non-negative integer.
    fn from_u64(v: u64) -> Option<Self> {
        Self::from_f64(v as f64)
    }
    /// JSON `null` (FHIR never sends it for an element).
    fn from_null() -> Option<Self> {
        None
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl<'de, T: Lenient<'de>> de::Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(PhantomData))
    }
}

struct FieldVisitor<T>(PhantomData<T>);

fn field<T>(v: Option<T>) -> Field<T> {
    v.map_or(Field::Invalid, Field::Value)
}

impl<'de, T: Lenient<'de>> Visitor<'de> for FieldVisitor<T> {
    type Value = Field<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(field(T::from_bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(field(T::from_i64(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(field(T::from_u64(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(field(T::from_f64(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(field(T::from_str(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(field(T::from_null()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(field(T::from_null()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(field(T::from_map(map)?))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(field(T::from_seq(seq)?))
    }
}

/// A string, charged to the parse's allowance ([`within_allowance`]): `"a"` is 3 bytes
/// of text and an allocation of 8.
impl Lenient<'_> for Text {
    fn from_str(s: &str) -> Option<Self> {
        charge(crate::json_cost::size_class(s.len())).then(|| s.into())
    }
}

impl Lenient<'_> for bool {
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

impl Lenient<'_> for f64 {
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
}

/// An integer (`expires_in` of a hook request): `3.0` and integers past `i64` are not.
impl Lenient<'_> for i64 {
    fn from_i64(v: i64) -> Option<Self> {
        Some(v)
    }
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok()
    }
}

/// An element whose presence is all the model reads (`dataAbsentReason`, `onsetAge`):
/// any JSON value, skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Present;

impl<'de> Lenient<'de> for Present {
    fn from_str(_: &str) -> Option<Self> {
        Some(Present)
    }
    fn from_bool(_: bool) -> Option<Self> {
        Some(Present)
    }
    fn from_f64(_: f64) -> Option<Self> {
        Some(Present)
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Some(Present))
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some(Present))
    }
}

/// An array: its elements that could be read and hold something (an element of the
/// wrong type, or a void one, is dropped, as the model reads nothing from it). Not an
/// array: invalid. Read by [`read_list`], within the parse's allowance.
impl<'de, T: Lenient<'de>> Lenient<'de> for Vec<T> {
    fn from_seq<A: SeqAccess<'de>>(seq: A) -> Result<Option<Self>, A::Error> {
        read_list(seq, |item: Field<T>| {
            item.into_value().filter(|v| !v.is_void())
        })
        .map(Some)
    }
}

/// The elements of an array that `keep` keeps. Each time the list grows its new buffer
/// is charged to the parse's allowance, at the allocator's size class (an element can be
/// larger than its tree's slot: `component: [{}, ...]`); the charges add up to at least
/// the old and the new buffer held together while it grows, so the peak stays within the
/// allowance. Past it the rest is skipped unread.
fn read_list<'de, A: SeqAccess<'de>, T: Lenient<'de>, U>(
    mut seq: A,
    mut keep: impl FnMut(Field<T>) -> Option<U>,
) -> Result<Vec<U>, A::Error> {
    let mut out = Vec::new();
    while let Some(item) = seq.next_element::<Field<T>>()? {
        let Some(v) = keep(item) else { continue };
        if out.len() == out.capacity() {
            let grown = (2 * out.capacity()).max(1);
            if !charge(crate::json_cost::size_class(
                grown * std::mem::size_of::<U>(),
            )) {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                break;
            }
            out.reserve_exact(grown - out.len());
        }
        out.push(v);
    }
    Ok(out)
}

/// A Bundle's entries: the ones with a resource, and how many had none that could be
/// read (counted, not kept: §1 counts them as malformed, and `[{},{},...]` would
/// otherwise keep a slot for each). `search.mode = outcome` entries are a server's
/// messages, not matches: neither kept nor counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entries {
    pub read: Vec<Entry>,
    pub unreadable: usize,
}

impl<'de> Lenient<'de> for Entries {
    fn from_seq<A: SeqAccess<'de>>(seq: A) -> Result<Option<Self>, A::Error> {
        let mut unreadable = 0;
        let read = read_list(seq, |item: Field<Entry>| match item {
            Field::Value(e) if is_outcome(&e) => None,
            Field::Value(e) if matches!(e.resource, Field::Value(_)) => Some(e),
            _ => {
                unreadable += 1;
                None
            }
        })?;
        Ok(Some(Entries { read, unreadable }))
    }
}

impl Field<Entries> {
    /// How many entries the Bundle has (kept and unreadable).
    pub fn count(&self) -> usize {
        self.get().map_or(0, |e| e.read.len() + e.unreadable)
    }
}

/// An element FHIR gives as one value in some resource types and as an array in others
/// (`category`, `bodySite`, `interpretation`): read as a list either way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Lenient<'de>> Lenient<'de> for OneOrMany<T> {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        Ok(Some(OneOrMany(T::from_map(map)?.into_iter().collect())))
    }
    fn from_seq<A: SeqAccess<'de>>(seq: A) -> Result<Option<Self>, A::Error> {
        Ok(Vec::<T>::from_seq(seq)?.map(OneOrMany))
    }
}

impl<T> Field<OneOrMany<T>> {
    /// The values (none when absent or invalid).
    pub fn all(&self) -> &[T] {
        self.get().map_or(&[], |m| m.0.as_slice())
    }
}

/// The element names of a struct's tables (its own, then its groups': see [`Group`]),
/// grouped by length: a key is compared with the few names of its length alone (a
/// [`Resource`] has over 50, and most keys of real data are ones it skips), by their
/// [`print`]s, held beside the names (comparing them byte by byte instead, after
/// following each name's pointer, took a fifth more instructions; matching keys is 6 %
/// of a hook call's).
pub(crate) struct Keys {
    by_len: Vec<Vec<Key>>,
}

struct Key {
    print: [u64; 2],
    name: &'static str,
    at: (usize, usize),
}

impl Keys {
    pub(crate) fn new(tables: &[&[&'static str]]) -> Self {
        let mut by_len: Vec<Vec<Key>> = Vec::new();
        for (t, keys) in tables.iter().enumerate() {
            for (i, name) in keys.iter().enumerate() {
                if by_len.len() <= name.len() {
                    by_len.resize_with(name.len() + 1, Vec::new);
                }
                by_len[name.len()].push(Key {
                    print: print(name.as_bytes()),
                    name,
                    at: (t, i),
                });
            }
        }
        Keys { by_len }
    }

    /// `(table, index)` of a name (of the first table that has it).
    fn find(&self, key: &str) -> Option<(usize, usize)> {
        let same_len = self.by_len.get(key.len())?;
        let p = print(key.as_bytes());
        same_len
            .iter()
            .find(|k| k.print == p && (key.len() <= PRINTED || same_text(k.name, key)))
            .map(|k| k.at)
    }
}

/// The longest text a [`print`] holds whole.
const PRINTED: usize = 16;

/// A text's bytes as two words: its first and its last eight (overlapping below 16
/// bytes), or, below 8, all of them. Two texts of one length of at most [`PRINTED`]
/// bytes are equal exactly when their prints are.
fn print(s: &[u8]) -> [u64; 2] {
    if let (Some(first), Some(last)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        return [u64::from_le_bytes(*first), u64::from_le_bytes(*last)];
    }
    if let (Some(first), Some(last)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        let (first, last) = (u32::from_le_bytes(*first), u32::from_le_bytes(*last));
        return [u64::from(first) | u64::from(last) << 32, 0];
    }
    let word = s
        .iter()
        .enumerate()
        .fold(0, |w, (i, b)| w | u64::from(*b) << (8 * i));
    [word, 0]
}

/// Whether two short texts (element names, codes, code systems) are equal, compared a
/// word at a time in line: `==` calls the C library's `memcmp`, and for texts this short
/// the call cost more than the comparison (matching element names and the call to
/// `memcmp` were 13 % of the time from a hook body to its answer; 8 % without the call).
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map(|w| u64::from_ne_bytes(*w))
    };
    if n >= 8 {
        // Whole words, then the last eight bytes (overlapping the previous word).
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        word(a, n - 8) == word(b, n - 8)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// Matches an object key against a struct's [`Keys`] without allocating (keys with JSON
/// escapes arrive as owned strings and match the same way): `(table, index)`.
pub(crate) struct KeyIndex(pub(crate) &'static Keys);

impl<'de> DeserializeSeed<'de> for KeyIndex {
    type Value = Option<(usize, usize)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIndex {
    type Value = Option<(usize, usize)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.find(v))
    }
}

/// Elements a struct keeps apart from itself, boxed, and allocates only when one of them
/// is present: each resource type reads a few of the elements [`Resource`] has slots for,
/// so a resource holds the groups of its type alone (an Observation its `observation`
/// group, a Condition its `condition` group). Reading an absent group gives its
/// elements, all absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group<T>(Option<Box<T>>);

/// A struct of elements, all absent, shared (what an absent [`Group`] reads as).
pub trait Elements: Default + Sync + 'static {
    fn empty() -> &'static Self;
}

impl<T: Elements> std::ops::Deref for Group<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.0 {
            Some(g) => g,
            None => T::empty(),
        }
    }
}

impl<T: Elements> Group<T> {
    /// The group's elements, when one was present.
    pub fn into_inner(self) -> Option<Box<T>> {
        self.0
    }

    /// The group to read an element into, allocated (and charged to the parse's
    /// allowance, [`within_allowance`]) on its first element; `None` once the allowance is
    /// spent.
    pub(crate) fn make(&mut self) -> Option<&mut T> {
        if self.0.is_none() {
            if !charge(crate::json_cost::size_class(std::mem::size_of::<T>())) {
                return None;
            }
            self.0 = Some(Box::default());
        }
        self.0.as_deref_mut()
    }
}

/// A struct of lenient elements: each JSON key names one field (a repeated key: the last
/// wins, as in most JSON readers); unknown keys are skipped unread. Also the CDS Hooks
/// request's envelope (`cds_hooks::request`). After the elements, `groups` names the
/// struct's [`Group`]s: their elements are keys of this struct's JSON object too.
macro_rules! lenient_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $json:literal => $field:ident : $ty:ty, )*
        }
    ) => {
        $crate::record::resource::lenient_struct! {
            $(#[$meta])*
            pub struct $name {
                $( $(#[$fmeta])* $json => $field : $ty, )*
            }
            groups {}
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $json:literal => $field:ident : $ty:ty, )*
        }
        groups {
            $( $(#[$gmeta:meta])* $group:ident : $gty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $( $(#[$gmeta])* pub $group: $crate::record::resource::Group<$gty>, )*
        }

        impl $name {
            /// The JSON names of the elements, in the order of the fields.
            pub(crate) const KEYS: &'static [&'static str] = &[$($json),*];

            /// Read the value of the element `KEYS[i]`.
            pub(crate) fn read_element<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                i: usize,
                map: &mut A,
            ) -> Result<(), A::Error> {
                let mut n = 0usize;
                $(
                    if i == n {
                        self.$field = map.next_value()?;
                        return Ok(());
                    }
                    n += 1;
                )*
                let _ = n;
                map.next_value::<serde::de::IgnoredAny>()?;
                Ok(())
            }
        }

        impl $crate::record::resource::Elements for $name {
            fn empty() -> &'static Self {
                static EMPTY: std::sync::LazyLock<$name> = std::sync::LazyLock::new(Default::default);
                &EMPTY
            }
        }

        impl<'de> $crate::record::resource::Lenient<'de> for $name {
            fn is_void(&self) -> bool {
                *self == $name::default()
            }

            fn from_map<A: serde::de::MapAccess<'de>>(
                mut map: A,
            ) -> Result<Option<Self>, A::Error> {
                let mut out = $name::default();
                out.read_map(&mut map)?;
                Ok(Some(out))
            }
        }

        impl $name {
            /// Read an object's elements into `self` (in place: a boxed value is filled
            /// where it lives, not built and then moved).
            pub(crate) fn read_map<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                map: &mut A,
            ) -> Result<(), A::Error> {
                static KEYS: std::sync::LazyLock<$crate::record::resource::Keys> =
                    std::sync::LazyLock::new(|| {
                        $crate::record::resource::Keys::new(&[$name::KEYS, $(<$gty>::KEYS),*])
                    });
                let out = self;
                while let Some(key) =
                    map.next_key_seed($crate::record::resource::KeyIndex(&KEYS))?
                {
                    match key {
                        Some((0, i)) => out.read_element(i, map)?,
                        Some((_table, _i)) => {
                            #[allow(unused_mut)]
                            let mut t = 1usize;
                            $(
                                if _table == t {
                                    match out.$group.make() {
                                        Some(g) => g.read_element(_i, map)?,
                                        None => {
                                            map.next_value::<serde::de::IgnoredAny>()?;
                                        }
                                    }
                                    continue;
                                }
                                t += 1;
                            )*
                            let _ = t;
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(())
            }
        }
    };
}
pub(crate) use lenient_struct;

lenient_struct! {
    pub struct Coding {
        "system" => system: Field<Text>,
        "code" => code: Field<Text>,
        "display" => display: Field<Text>,
    }
}

lenient_struct! {
    /// An extension the model reads: a `bodySite`'s laterality (§2).
    pub struct Extension {
        "url" => url: Field<Text>,
        "valueCodeableConcept" => value_codeable_concept: Field<Codings>,
    }
}

lenient_struct! {
    /// A CodeableConcept read for its codings alone (an extension's value): it has no
    /// extensions of its own, so concepts cannot nest without bound.
    pub struct Codings {
        "coding" => coding: Field<Vec<Coding>>,
    }
}

lenient_struct! {
    pub struct CodeableConcept {
        "coding" => coding: Field<Vec<Coding>>,
        "text" => text: Field<Text>,
        "extension" => extension: Field<Vec<Extension>>,
    }
}

impl CodeableConcept {
    pub fn codings(&self) -> &[Coding] {
        self.coding.items()
    }
}

lenient_struct! {
    pub struct Reference {
        "reference" => reference: Field<Text>,
        "display" => display: Field<Text>,
    }
}

lenient_struct! {
    pub struct Quantity {
        "value" => value: Field<f64>,
        "comparator" => comparator: Field<Text>,
        "unit" => unit: Field<Text>,
        "system" => system: Field<Text>,
        "code" => code: Field<Text>,
    }
}

lenient_struct! {
    pub struct Period {
        "start" => start: Field<Text>,
        "end" => end: Field<Text>,
    }
}

lenient_struct! {
    /// An Observation component (§1 panels: blood pressure, vital-sign panels).
    pub struct Component {
        "code" => code: Field<CodeableConcept>,
        "valueQuantity" => value_quantity: Field<Quantity>,
    }
}

lenient_struct! {
    /// Encounter.class: a Coding in R4 (a CodeableConcept in R5 and some exports).
    pub struct EncounterClass {
        "code" => code: Field<Text>,
        "coding" => coding: Field<Vec<Coding>>,
    }
}

lenient_struct! {
    /// A Medication's ingredient.
    pub struct Ingredient {
        "itemCodeableConcept" => item_codeable_concept: Field<CodeableConcept>,
    }
}

lenient_struct! {
    pub struct EntrySearch {
        "mode" => mode: Field<Text>,
    }
}

lenient_struct! {
    /// A Bundle entry. Its resource is boxed: a Bundle's size does not grow with the
    /// size of a resource.
    pub struct Entry {
        "fullUrl" => full_url: Field<Text>,
        "resource" => resource: Field<Box<Resource>>,
        "search" => search: Field<EntrySearch>,
    }
}

lenient_struct! {
    /// A Bundle link (paging: `relation` `next`).
    pub struct Link {
        "relation" => relation: Field<Text>,
        "url" => url: Field<Text>,
    }
}

/// How deep resources may nest (a Bundle in a Bundle's entry, a contained resource):
/// each level of a resource takes a stack frame, and FHIR nests two or three levels
/// (contained resources do not contain others). Deeper resources are skipped unread
/// (iteratively, by `IgnoredAny`) and read as invalid.
pub const MAX_RESOURCE_DEPTH: u32 = 8;

thread_local! {
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Bytes of resources the parse on this thread may still allocate
    /// ([`within_allowance`]); `None`: the parse has passed it.
    static ALLOWANCE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(Some(usize::MAX)) };
}

/// What one resource read costs: its box, at the allocator's size class. Its groups,
/// lists and strings are charged as they are allocated.
pub const RESOURCE_COST: usize = crate::json_cost::size_class(std::mem::size_of::<Resource>());

/// A parse passed the memory it was allowed for resources (see [`within_allowance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverAllowance;

/// The parsed form may take this many times its text's bytes ([`allowance_for`]).
/// Measured (BENCHMARKS.md): the 200 committed Synthea patients take 1.4 to 1.8 times;
/// 500 compact, EHR-style resources of one type (a Condition, an Encounter, a vitals
/// panel of ~100 to 550 bytes, nothing but what the model reads) 3.6 to 4.7 times. Only
/// degenerate text takes more (`{"resource":{}}`: 24 times), and is refused.
pub const ALLOWANCE_PER_BYTE: usize = 8;

/// What the parse of any text may take beyond [`ALLOWANCE_PER_BYTE`] times its bytes: a
/// small body of a few resources can cost more than that (each resource of a Bundle or
/// a prefetch is a box with a slot for every element it may hold), and it must still be
/// read.
pub const ALLOWANCE_SLACK: usize = 16 << 10;

/// The memory a JSON text of `text_len` bytes may take once parsed into resources: what
/// the memory budgets (`--max-inflight-body`, `--fhir-max-bytes`) take for it before the
/// parse, and the parse's allowance ([`within_allowance`]). From the length alone: no
/// pass over the bytes before the parse.
pub const fn allowance_for(text_len: usize) -> usize {
    text_len
        .saturating_mul(ALLOWANCE_PER_BYTE)
        .saturating_add(ALLOWANCE_SLACK)
}

/// Run `read` (a parse) allowing the resources it reads, their groups, lists and strings
/// at most `allowance` bytes ([`allowance_for`] the text), each at the allocator's size
/// class. Why: the budgets are taken before the parse from the text's length alone; real
/// records take less than the allowance, degenerate text far more
/// (`"contained": [{},{},...]`: 3 bytes and a resource of hundreds of bytes each). Past
/// the allowance every further element is skipped unread and the parse is refused as a
/// whole.
pub fn within_allowance<T>(allowance: usize, read: impl FnOnce() -> T) -> Result<T, OverAllowance> {
    let before = ALLOWANCE.replace(Some(allowance));
    let out = read();
    let left = ALLOWANCE.replace(before);
    left.map(|_| out).ok_or(OverAllowance)
}

/// Take one resource's cost from the allowance: `false` once it is spent.
pub(crate) fn charge_resource() -> bool {
    charge(RESOURCE_COST)
}

/// Take `bytes` from the allowance: `false` once it is spent.
pub(crate) fn charge(bytes: usize) -> bool {
    let left = ALLOWANCE.get().and_then(|l| l.checked_sub(bytes));
    ALLOWANCE.set(left);
    left.is_some()
}

/// A nested resource (an entry's, a contained one), read within [`MAX_RESOURCE_DEPTH`]
/// and the parse's allowance ([`within_allowance`]).
impl<'de> Lenient<'de> for Box<Resource> {
    fn is_void(&self) -> bool {
        Resource::is_void(self)
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        if !charge_resource() {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        }
        let depth = DEPTH.get();
        if depth >= MAX_RESOURCE_DEPTH {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        }
        DEPTH.set(depth + 1);
        let mut out = Box::<Resource>::default();
        let read = out.read_map(&mut map);
        DEPTH.set(depth);
        read?;
        Ok(Some(out))
    }
}

lenient_struct! {
    /// A resource of any type the model reads, and a Bundle: the elements most types
    /// have, then the groups of one type or a few.
    pub struct Resource {
        "resourceType" => resource_type: Field<ResourceType>,
        "id" => id: Field<Text>,
        "status" => status: Field<Text>,
        "code" => code: Field<CodeableConcept>,
        "subject" => subject: Field<Reference>,
        "patient" => patient: Field<Reference>,
        "category" => category: Field<OneOrMany<CodeableConcept>>,
        "bodySite" => body_site: Field<OneOrMany<CodeableConcept>>,
    }
    groups {
        condition: ConditionElements,
        observation: ObservationElements,
        event: EventElements,
        medication: MedicationElements,
        person: PersonElements,
        bundle: BundleElements,
    }
}

lenient_struct! {
    /// A Condition's elements (§1: status, onset, abatement).
    pub struct ConditionElements {
        "clinicalStatus" => clinical_status: Field<CodeableConcept>,
        "verificationStatus" => verification_status: Field<CodeableConcept>,
        "onsetDateTime" => onset_date_time: Field<Text>,
        "onsetPeriod" => onset_period: Field<Period>,
        "onsetAge" => onset_age: Field<Present>,
        "onsetString" => onset_string: Field<Present>,
        "onsetRange" => onset_range: Field<Present>,
        "abatementDateTime" => abatement_date_time: Field<Text>,
        "abatementPeriod" => abatement_period: Field<Period>,
        "abatementAge" => abatement_age: Field<Present>,
        "abatementRange" => abatement_range: Field<Present>,
        "abatementString" => abatement_string: Field<Present>,
        "abatementBoolean" => abatement_boolean: Field<bool>,
        "recordedDate" => recorded_date: Field<Text>,
    }
}

lenient_struct! {
    /// An Observation's (and a DiagnosticReport's) elements: values, components, time.
    pub struct ObservationElements {
        "component" => component: Field<Vec<Component>>,
        "interpretation" => interpretation: Field<OneOrMany<CodeableConcept>>,
        "dataAbsentReason" => data_absent_reason: Field<Present>,
        "valueBoolean" => value_boolean: Field<bool>,
        "valueCodeableConcept" => value_codeable_concept: Field<CodeableConcept>,
        "valueString" => value_string: Field<Text>,
        "valueQuantity" => value_quantity: Field<Quantity>,
        "effectiveDateTime" => effective_date_time: Field<Text>,
        "effectivePeriod" => effective_period: Field<Period>,
        "effectiveInstant" => effective_instant: Field<Text>,
        "issued" => issued: Field<Text>,
    }
}

lenient_struct! {
    /// A Procedure's and an Encounter's elements: when, why, what kind.
    pub struct EventElements {
        "reasonCode" => reason_code: Field<Vec<CodeableConcept>>,
        /// An array only (a lone object is not read, as before the typed reader).
        "procedureCode" => procedure_code: Field<Vec<CodeableConcept>>,
        "class" => class: Field<EncounterClass>,
        "period" => period: Field<Period>,
        "performedDateTime" => performed_date_time: Field<Text>,
        "performedPeriod" => performed_period: Field<Period>,
        "performedInstant" => performed_instant: Field<Text>,
    }
}

lenient_struct! {
    /// The elements of the medication resources (MedicationRequest, -Statement,
    /// -Administration, Medication).
    pub struct MedicationElements {
        "medicationCodeableConcept" => medication_codeable_concept: Field<CodeableConcept>,
        "medicationReference" => medication_reference: Field<Reference>,
        "contained" => contained: Field<Vec<Box<Resource>>>,
        "ingredient" => ingredient: Field<Vec<Ingredient>>,
        "authoredOn" => authored_on: Field<Text>,
        "dateAsserted" => date_asserted: Field<Text>,
        "started" => started: Field<Text>,
    }
}

lenient_struct! {
    /// A Patient's elements.
    pub struct PersonElements {
        "birthDate" => birth_date: Field<Text>,
        "deceasedBoolean" => deceased_boolean: Field<bool>,
        "deceasedDateTime" => deceased_date_time: Field<Text>,
    }
}

lenient_struct! {
    /// A Bundle's elements.
    pub struct BundleElements {
        "entry" => entry: Field<Entries>,
        "link" => link: Field<Vec<Link>>,
    }
}

/// Array elements kept as found, so a caller can count the ones it could not read
/// (a Bundle's entries: a malformed entry is counted, §1).
impl<'de, T: Lenient<'de>> Lenient<'de> for Field<T> {
    fn from_str(s: &str) -> Option<Self> {
        Some(field(T::from_str(s)))
    }
    fn from_bool(b: bool) -> Option<Self> {
        Some(field(T::from_bool(b)))
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(field(T::from_f64(v)))
    }
    fn from_null() -> Option<Self> {
        Some(field(T::from_null()))
    }
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        Ok(Some(field(T::from_map(map)?)))
    }
    fn from_seq<A: SeqAccess<'de>>(seq: A) -> Result<Option<Self>, A::Error> {
        Ok(Some(field(T::from_seq(seq)?)))
    }
}

impl Resource {
    pub fn resource_type(&self) -> Option<&ResourceType> {
        self.resource_type.get()
    }
    pub fn id(&self) -> Option<&str> {
        self.id.as_str()
    }
    pub fn is_bundle(&self) -> bool {
        self.resource_type() == Some(&ResourceType::Bundle)
    }
}

/// Declares [`ResourceType`]: each named type, spelled as FHIR spells it.
macro_rules! resource_types {
    ($($name:ident),* $(,)?) => {
        /// A resource's `resourceType`: the types the service reads or skips by name, and
        /// any other as written. Read once, when the resource is parsed: every later
        /// question about a resource's type (is it a Bundle, a Patient, a fact of §1?) is
        /// a comparison of two numbers, not of two texts, and the common types allocate
        /// nothing.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ResourceType {
            $($name,)*
            /// Any other text (`""` included), as written.
            Other(Text),
        }

        impl ResourceType {
            /// The type as FHIR spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ResourceType::$name => stringify!($name),)*
                    ResourceType::Other(t) => t,
                }
            }

            /// The named type `s` spells, if any.
            fn named(s: &str) -> Option<ResourceType> {
                match s {
                    $(stringify!($name) => Some(ResourceType::$name),)*
                    _ => None,
                }
            }
        }
    };
}

resource_types! {
    Bundle,
    Condition,
    DiagnosticReport,
    Encounter,
    ImagingStudy,
    Medication,
    MedicationRequest,
    MedicationStatement,
    Observation,
    OperationOutcome,
    Patient,
    Procedure,
    ServiceRequest,
}

/// A named type allocates nothing; any other is a string like any [`Text`], charged the
/// same way.
impl Lenient<'_> for ResourceType {
    fn from_str(s: &str) -> Option<Self> {
        ResourceType::named(s).or_else(|| Text::from_str(s).map(ResourceType::Other))
    }
}

/// A JSON text read as one resource (or Bundle): `Field::Invalid` when it is JSON but
/// not an object; `Err` only when it is not JSON.
pub fn from_slice(json: &[u8]) -> serde_json::Result<Field<Resource>> {
    read_json(json)
}

/// A JSON text read into `T`: the one entry of every typed parse of bytes. The text is
/// checked as UTF-8 once, whole, and then read as a `str`, which serde_json does not
/// check again string by string (those checks of many short strings took 8 % of a hook
/// call's CPU, measured under load; one pass over the body takes a fraction of that).
/// A text that is not UTF-8 is read as bytes: the same reading, and the same error, with
/// its line and column, as before.
pub fn read_json<'de, T: serde::Deserialize<'de>>(json: &'de [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(json) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(json),
    }
}

/// A JSON value of a caller that has one (tests, and JSON built in code) read as one
/// resource, the same way as [`from_slice`].
pub fn from_value(json: &serde_json::Value) -> Field<Resource> {
    use serde::Deserialize;
    // `&Value` is a Deserializer whose only error is a type mismatch, which a lenient
    // field never raises.
    Field::<Resource>::deserialize(json).unwrap_or(Field::Invalid)
}

/// [`from_value`] over a list (a caller that still holds JSON values: its producer reads
/// bytes in a later step). A value that is not an object is kept as a resource of no
/// type, which `record` counts as malformed, as it counted the value.
pub fn from_values(json: &[serde_json::Value]) -> Vec<Box<Resource>> {
    json.iter()
        .map(|v| match from_value(v) {
            Field::Value(r) => Box::new(r),
            Field::Absent | Field::Invalid => Box::default(),
        })
        .collect()
}

/// The resources of a resource or Bundle, Bundles (of any type, nested) flattened into
/// their entries' resources: the one reader of Bundle envelopes. `visit` gets each
/// resource with the `fullUrl` of its entry; an entry without a readable resource is
/// counted in `malformed`. `search.mode = outcome` entries and OperationOutcomes are
/// not the patient's data and are skipped.
///
/// The same walk borrows (`&Resource`: the record reads in place) or owns
/// (`Box<Resource>`: the FHIR layer moves a page's resources out of it, copying none):
/// see [`Node`].
pub fn flatten<R: Node>(
    r: R,
    full_url: Option<R::Url>,
    malformed: &mut usize,
    visit: &mut impl FnMut(R, Option<R::Url>),
) {
    if !r.resource().is_bundle() {
        if r.resource().resource_type() != Some(&ResourceType::OperationOutcome) {
            visit(r, full_url);
        }
        return;
    }
    for entry in r.entries() {
        match entry {
            Some((res, url)) => flatten(res, url, malformed, visit),
            None => *malformed += 1,
        }
    }
}

/// A resource held by reference or by value, as [`flatten`] walks it.
pub trait Node: Sized {
    /// A `fullUrl` as this holder gives it (`&str` borrowed, [`Text`] owned).
    type Url;
    fn resource(&self) -> &Resource;
    /// A Bundle's entries in order, `search.mode = outcome` ones left out: each its
    /// resource and `fullUrl`, or `None` when it has no readable resource.
    fn entries(self) -> impl Iterator<Item = Option<(Self, Option<Self::Url>)>>;
}

/// An outcome entry (`search.mode = outcome`): a server's message, not a match.
fn is_outcome(entry: &Entry) -> bool {
    entry.search.get().and_then(|s| s.mode.as_str()) == Some("outcome")
}

impl<'r> Node for &'r Resource {
    type Url = &'r str;
    fn resource(&self) -> &Resource {
        self
    }
    fn entries(self) -> impl Iterator<Item = Option<(Self, Option<&'r str>)>> {
        let (read, unreadable) = match self.bundle.entry.get() {
            Some(e) => (e.read.as_slice(), e.unreadable),
            None => (&[][..], 0),
        };
        read.iter()
            .filter_map(|e| Some(Some((&**e.resource.get()?, e.full_url.as_str()))))
            .chain(std::iter::repeat_n(None, unreadable))
    }
}

/// Owned, a resource moves boxed: the walk moves a pointer, not the resource (moving
/// 336-byte resources through it was a tenth of a hook call's time).
impl Node for Box<Resource> {
    type Url = Text;
    fn resource(&self) -> &Resource {
        self
    }
    fn entries(self) -> impl Iterator<Item = Option<(Self, Option<Text>)>> {
        let Entries { read, unreadable } = match self.bundle.into_inner().map(|b| b.entry) {
            Some(Field::Value(entries)) => entries,
            _ => Entries::default(),
        };
        read.into_iter()
            .filter_map(|e| Some(Some((e.resource.into_value()?, e.full_url.into_value()))))
            .chain(std::iter::repeat_n(None, unreadable))
    }
}

/// A Bundle's `next` link (paging).
pub fn next_link(bundle: &Resource) -> Option<&str> {
    bundle
        .bundle
        .link
        .items()
        .iter()
        .find(|l| l.relation.as_str() == Some("next"))
        .and_then(|l| l.url.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn same_text_is_equality(
            a in "[a-cé]{0,24}",
            b in "[a-cé]{0,24}",
            changed in proptest::option::of(proptest::sample::select(vec![0usize, 3, 7, 8, 11, 15, 16, 20, 31])),
        ) {
            // `b` unrelated, or `a` with one byte changed (any word of it).
            let b = match changed {
                Some(at) if at < a.len() && a.is_char_boundary(at) && a.is_char_boundary(at + 1) => {
                    let mut c = a.clone();
                    c.replace_range(at..at + 1, "d");
                    c
                }
                Some(_) => a.clone(),
                None => b,
            };
            proptest::prop_assert_eq!(same_text(&a, &b), a == b);
        }
    }
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Resource {
        let text = serde_json::to_vec(&v).unwrap();
        let Field::Value(r) = from_slice(&text).unwrap() else {
            panic!("not a resource")
        };
        // The two entry points agree.
        assert_eq!(from_value(&v), Field::Value(r.clone()));
        r
    }

    #[test]
    fn reads_the_elements_the_model_needs_and_skips_the_rest() {
        let r = parse(json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "text": {"div": "<div>skipped</div>"}, "meta": {"versionId": "3"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "48065-7",
                                  "display": "D-dimer FEU", "userSelected": true}],
                     "text": "D-dimer"},
            "valueQuantity": {"value": 0.62, "unit": "mg/L FEU",
                              "system": "http://unitsofmeasure.org", "code": "mg/L{FEU}"},
            "effectiveDateTime": "2026-11-30T10:00:00Z",
            "subject": {"reference": "Patient/p1"},
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                           "valueQuantity": {"value": 108}}]
        }));
        assert_eq!(r.resource_type(), Some(&ResourceType::Observation));
        assert_eq!(r.id(), Some("o1"));
        let code = r.code.get().unwrap();
        assert_eq!(code.codings()[0].code.as_str(), Some("48065-7"));
        assert_eq!(code.codings()[0].display.as_str(), Some("D-dimer FEU"));
        assert_eq!(code.text.as_str(), Some("D-dimer"));
        let q = r.observation.value_quantity.get().unwrap();
        assert_eq!(q.value, Field::Value(0.62));
        assert_eq!(q.code.as_str(), Some("mg/L{FEU}"));
        assert_eq!(
            r.observation.effective_date_time.as_str(),
            Some("2026-11-30T10:00:00Z")
        );
        assert_eq!(
            r.subject.get().unwrap().reference.as_str(),
            Some("Patient/p1")
        );
        let comp = &r.observation.component.items()[0];
        assert_eq!(
            comp.value_quantity.get().unwrap().value,
            Field::Value(108.0)
        );
    }

    #[test]
    fn wrong_types_are_invalid_not_errors() {
        let r = parse(json!({
            "resourceType": "Condition", "id": 7, "status": null,
            "code": "calf pain", "clinicalStatus": [1, 2],
            "onsetDateTime": {"nested": [1, {"deep": true}]},
            "component": {"not": "an array"},
            "bodySite": {"coding": [{"code": "30021000"}]},
            "category": [{"coding": "x"}, 5, {"text": "problem"}]
        }));
        assert!(r.id.is_invalid());
        assert!(r.status.is_invalid());
        assert!(r.code.is_invalid());
        assert!(r.condition.clinical_status.is_invalid());
        assert!(r.condition.onset_date_time.is_invalid());
        assert!(r.observation.component.is_invalid());
        // One object where FHIR has an array in some types: read as one.
        assert_eq!(r.body_site.all().len(), 1);
        // Array elements of the wrong type are dropped; a coding that is not an array
        // is invalid inside its CodeableConcept.
        let cats = r.category.all();
        assert_eq!(cats.len(), 2);
        assert!(cats[0].coding.is_invalid());
        assert_eq!(cats[1].text.as_str(), Some("problem"));
    }

    #[test]
    fn not_an_object_is_invalid_and_not_json_is_an_error() {
        assert_eq!(from_slice(b"[1,2]").unwrap(), Field::Invalid);
        assert_eq!(from_slice(b"\"Patient\"").unwrap(), Field::Invalid);
        assert!(from_slice(b"{\"resourceType\": ").is_err());
    }

    #[test]
    fn text_that_is_not_utf8_reads_as_it_did_as_bytes() {
        // In a skipped element serde_json never checks a string: still read.
        let skipped = b"{\"resourceType\":\"Patient\",\"text\":{\"div\":\"\xff\"}}";
        let Field::Value(r) = from_slice(skipped).unwrap() else {
            panic!()
        };
        assert_eq!(r.resource_type(), Some(&ResourceType::Patient));
        // In a read one: the error, with its place, that serde_json gives for bytes.
        let read = b"{\"resourceType\":\"Pat\xffient\"}";
        let e = from_slice(read).unwrap_err().to_string();
        assert_eq!(
            e,
            serde_json::from_slice::<Field<Resource>>(read)
                .unwrap_err()
                .to_string()
        );
        assert!(e.contains("line 1 column"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn keys_find_what_a_search_of_the_names_finds(
            names in proptest::collection::vec("[ab]{0,20}", 0..40),
            others in proptest::collection::vec("[ab]{0,20}", 0..40),
        ) {
            let names: Vec<&'static str> =
                names.into_iter().map(|n| &*Box::leak(n.into_boxed_str())).collect();
            let (own, group) = names.split_at(names.len() / 2);
            let keys = Keys::new(&[own, group]);
            let search = |key: &str| {
                [own, group].iter().enumerate().find_map(|(t, table)| {
                    table.iter().position(|n| *n == key).map(|i| (t, i))
                })
            };
            for key in names.iter().copied().chain(others.iter().map(String::as_str)) {
                proptest::prop_assert_eq!(keys.find(key), search(key), "{}", key);
            }
        }
    }

    #[test]
    fn resource_types_are_read_by_name_and_others_kept_as_written() {
        for name in [
            "Patient",
            "Bundle",
            "MedicationStatement",
            "OperationOutcome",
        ] {
            let t = ResourceType::from_str(name).unwrap();
            assert!(!matches!(t, ResourceType::Other(_)), "{name}");
            assert_eq!(t.as_str(), name);
        }
        // Spelled otherwise (FHIR names are case-sensitive), unknown, or empty: as written.
        for other in ["patient", "Patients", "AllergyIntolerance", ""] {
            assert_eq!(
                ResourceType::from_str(other),
                Some(ResourceType::Other(other.into()))
            );
        }
        // A named type takes nothing from the parse's allowance; any other text does.
        assert_eq!(
            within_allowance(0, || ResourceType::from_str("Condition"))
                .ok()
                .flatten(),
            Some(ResourceType::Condition)
        );
        assert!(within_allowance(0, || ResourceType::from_str("Conditions")).is_err());
    }

    #[test]
    fn long_names_alike_at_both_ends_are_told_apart() {
        // Over 16 bytes, one print for all three: the names themselves decide.
        let names: &[&str] = &["abcdefgh-one-12345678", "abcdefgh-two-12345678"];
        let keys = Keys::new(&[names]);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(keys.find(name), Some((0, i)), "{name}");
        }
        assert_eq!(keys.find("abcdefgh-six-12345678"), None);
    }

    #[test]
    fn keys_find_every_name_where_it_is_and_nothing_else() {
        let own: &[&str] = &[
            "resourceType",
            "id",
            "status",
            "code",
            "a",
            "ab",
            "valueQuantity",
        ];
        let group: &[&str] = &["status", "effectiveDateTime", "onsetDateTime", "b"];
        let keys = Keys::new(&[own, group]);
        for (i, name) in own.iter().enumerate() {
            assert_eq!(keys.find(name), Some((0, i)), "{name}");
        }
        // `status` is in both tables: the first table's.
        for (i, name) in group.iter().enumerate().filter(|(_, n)| **n != "status") {
            assert_eq!(keys.find(name), Some((1, i)), "{name}");
        }
        assert_eq!(keys.find("status"), Some((0, 2)));
        for other in [
            "",
            "Status",
            "statu",
            "statuss",
            "effectiveDateTimf",
            "valueQuantitx",
            "c",
        ] {
            assert_eq!(keys.find(other), None, "{other}");
        }
    }

    #[test]
    fn repeated_keys_keep_the_last_and_escaped_keys_match() {
        let r = from_slice(br#"{"id": "a", "id": "b", "resource\u0054ype": "Patient"}"#).unwrap();
        let Field::Value(r) = r else { panic!() };
        assert_eq!(r.id(), Some("b"));
        assert_eq!(r.resource_type(), Some(&ResourceType::Patient));
    }

    #[test]
    fn bundles_flatten_to_their_resources_counting_unreadable_entries() {
        let b = parse(json!({
            "resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "b"}],
            "entry": [
                {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Medication", "id": "1"}},
                {"resource": {"resourceType": "Bundle", "entry": [
                    {"resource": {"resourceType": "Condition", "id": "c"}}]}},
                {"search": {"mode": "outcome"},
                 "resource": {"resourceType": "OperationOutcome"}},
                {"resource": {"resourceType": "OperationOutcome"}},
                {"fullUrl": "no resource"},
                {"resource": "not an object"},
                42,
                null
            ]
        }));
        assert_eq!(next_link(&b), Some("b"));
        let mut seen = Vec::new();
        let mut malformed = 0;
        flatten(&b, None, &mut malformed, &mut |r, url| {
            seen.push((r.id().unwrap_or("").to_string(), url.map(str::to_string)))
        });
        assert_eq!(
            seen,
            [
                ("1".to_string(), Some("urn:uuid:1".to_string())),
                ("c".to_string(), None)
            ]
        );
        assert_eq!(malformed, 4);
        // Owned, the same walk moves the resources out.
        let mut moved = Vec::new();
        let mut malformed = 0;
        flatten(Box::new(b), None, &mut malformed, &mut |r, url| {
            moved.push((r, url))
        });
        let ids: Vec<_> = moved.iter().map(|(r, u)| (r.id(), u.as_deref())).collect();
        assert_eq!(ids, [(Some("1"), Some("urn:uuid:1")), (Some("c"), None)]);
        assert_eq!(malformed, 4);
    }

    #[test]
    fn lists_keep_no_element_that_holds_nothing() {
        let r = parse(json!({
            "resourceType": "Condition",
            "code": {"coding": [{}, {"code": "a"}, {"userSelected": true}]},
            "category": [{}, {"text": "problem"}],
            "contained": [{}, {"id": "m1"}]
        }));
        let codes: Vec<_> = r
            .code
            .get()
            .unwrap()
            .codings()
            .iter()
            .map(|c| c.code.as_str())
            .collect();
        assert_eq!(codes, [Some("a")]);
        assert_eq!(r.category.all().len(), 1);
        assert_eq!(r.medication.contained.items().len(), 1);
        // An absent group reads as its elements, all absent, and allocates nothing.
        assert!(r.observation.component.items().is_empty());
        assert_eq!(r.observation, Group::default());
    }

    #[test]
    fn a_resources_cost_is_its_boxs_size_class() {
        let size = std::mem::size_of::<Resource>();
        assert_eq!(RESOURCE_COST, crate::json_cost::size_class(size), "{size}");
    }

    #[test]
    fn resources_past_the_allowance_refuse_the_parse() {
        let page = |n: usize| {
            let entries = vec![r#"{"resource":{"resourceType":"Condition"}}"#; n].join(",");
            format!(r#"{{"resourceType":"Bundle","entry":[{entries}]}}"#)
        };
        // The slack alone. Each entry costs its resource, its `resourceType` string and
        // its list's slots (at most 5: every buffer the doubling list had, up to twice
        // its length, at the allocator's classes); the Bundle its group and its own
        // string: this many always fit, and more than the slack holds resources never do.
        let each = RESOURCE_COST + 5 * std::mem::size_of::<Entry>() + 16;
        let fits = (ALLOWANCE_SLACK - 1024) / each;
        let never = ALLOWANCE_SLACK / RESOURCE_COST + 1;
        let read = |n: usize| within_allowance(ALLOWANCE_SLACK, || from_slice(page(n).as_bytes()));
        let Ok(Ok(Field::Value(b))) = read(fits) else {
            panic!()
        };
        assert_eq!(b.bundle.entry.count(), fits);
        assert!(matches!(read(never), Err(OverAllowance)));
        // The allowance is the parse's own: the next one starts unlimited again.
        assert!(matches!(
            from_slice(page(fits + 1).as_bytes()),
            Ok(Field::Value(_))
        ));
    }

    #[test]
    fn deep_nesting_in_skipped_elements_costs_no_memory() {
        // Skipped elements are consumed by IgnoredAny without recursion and without a
        // tree: any depth passes.
        let deep = format!(
            "{{\"resourceType\":\"Patient\",\"extension\":{}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(
            from_slice(deep.as_bytes()).unwrap(),
            Field::Value(_)
        ));
        // Resources nested in resources are read to MAX_RESOURCE_DEPTH, deeper ones
        // skipped: the stack stays bounded however deep the input.
        for n in [3, 100, 10_000] {
            let nested = format!("{}{}", "{\"contained\":[".repeat(n), "]}".repeat(n));
            let Field::Value(mut r) = from_slice(nested.as_bytes()).unwrap() else {
                panic!()
            };
            let mut depth = 0;
            while let Some(inner) = r.medication.contained.items().first() {
                r = (**inner).clone();
                depth += 1;
            }
            assert_eq!(depth, (n - 1).min(MAX_RESOURCE_DEPTH as usize), "{n}");
        }
    }
}
