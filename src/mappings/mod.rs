//! The clinical knowledge as data (`mappings/`): FHIR R4 ValueSets (one per code set) and
//! `model.toml` (windows, thresholds, order codes, texts). Parsed and checked once; a bad
//! file is refused with the file, the entry and what is wrong. Pure: the only I/O is
//! [`Mappings::load_dir`] reading the files it is pointed at.
//!
//! Queries are fast: every (system, code) maps to a bit set of the code sets it belongs
//! to, so one hash lookup answers all concepts at once (ICD-10-CM `is-a` is a prefix
//! lookup on the normalised code: no dot, no surrounding whitespace, upper case). Code
//! ranges (CPT, ICD-10-CM) are compiled into sorted disjoint segments per system, one
//! binary search each; `compose.exclude` is a second index of the same shape, looked up
//! only when a code matched something and its system has excludes.

pub mod model;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

pub use model::{
    DDimerThreshold, Model, OrderSpec, OverrideReason, SimpleCoding, Thresholds, Windows,
};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_mappings.rs"));
}

pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const ICD10PCS: &str = "http://www.cms.gov/Medicare/Coding/ICD10";
pub const UCUM: &str = "http://unitsofmeasure.org";

/// Other identifiers of the same code systems seen in real data (HL7 OIDs).
const SYSTEM_ALIASES: &[(&str, &str)] = &[
    ("urn:oid:2.16.840.1.113883.6.90", ICD10CM),
    ("urn:oid:2.16.840.1.113883.6.96", SNOMED),
    ("urn:oid:2.16.840.1.113883.6.1", LOINC),
    ("urn:oid:2.16.840.1.113883.6.88", RXNORM),
    ("urn:oid:2.16.840.1.113883.6.12", CPT),
    ("urn:oid:2.16.840.1.113883.6.4", ICD10PCS),
];

/// FxHash (rustc's hasher): code lookups are on short trusted keys from our own files, so
/// a fast non-cryptographic hash is right here (one lookup per coding of every resource).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

const SOURCE_EXT: &str = "https://dvt-cds.example.org/fhir/StructureDefinition/source";

macro_rules! code_sets {
    ($($variant:ident => $key:literal,)*) => {
        /// The code sets the model queries (keys of `[codesets]` in model.toml).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CodeSet { $($variant,)* }
        impl CodeSet {
            pub const ALL: &'static [CodeSet] = &[$(CodeSet::$variant,)*];
            /// The key in model.toml `[codesets]`.
            pub fn key(self) -> &'static str {
                match self { $(CodeSet::$variant => $key,)* }
            }
        }
    };
}

code_sets! {
    LegPain => "leg-pain",
    LegSwelling => "leg-swelling",
    Surgery => "surgery",
    Bedridden => "bedridden",
    Paralysis => "paralysis",
    LegCast => "leg-cast",
    Cancer => "cancer",
    CancerTreatment => "cancer-treatment",
    Dvt => "dvt",
    DvtChronic => "dvt-chronic",
    Pe => "pe",
    DvtHistory => "dvt-history",
    PeHistory => "pe-history",
    Pregnancy => "pregnancy",
    FirstTrimester => "first-trimester",
    Delivery => "delivery",
    Postpartum => "postpartum",
    Estrogen => "estrogen",
    Anticoagulant => "anticoagulant",
    LongHaulTravel => "long-haul-travel",
    Dyspnoea => "dyspnoea",
    ChestPain => "chest-pain",
    Cough => "cough",
    Haemoptysis => "haemoptysis",
    Syncope => "syncope",
    Dizziness => "dizziness",
    Spo2 => "spo2",
    HeartRate => "heart-rate",
    PregnancyStatus => "pregnancy-status",
    DDimerFeu => "d-dimer-feu",
    DDimerDdu => "d-dimer-ddu",
    DDimerOrder => "d-dimer-order",
    LegVeinUltrasound => "leg-vein-ultrasound",
    Ctpa => "ctpa",
    DifficultyWalking => "difficulty-walking",
    BakerCyst => "baker-cyst",
    CalfMuscleStrain => "calf-muscle-strain",
    KneeLigamentOrMeniscusInjury => "knee-ligament-or-meniscus-injury",
    NerveCompression => "nerve-compression",
    ArterialDisease => "arterial-disease",
    SuperficialThrombophlebitis => "superficial-thrombophlebitis",
    Cellulitis => "cellulitis",
    LegSwellingUnsited => "leg-swelling-unsited",
    LegSiteOnlySwelling => "leg-site-only-swelling",
    GenericPain => "generic-pain",
    GenericSwelling => "generic-swelling",
    LegSite => "leg-site",
    UpperLimbSite => "upper-limb-site",
    MetastaticCancer => "metastatic-cancer",
    HaematologicalCancer => "haematological-cancer",
    PalliativeCare => "palliative-care",
    Antineoplastic => "antineoplastic",
    PregnancyLoss => "pregnancy-loss",
    Hcg => "hcg",
    Hypoxaemia => "hypoxaemia",
    SymptomQuestion => "symptom-question",
}

// CodeSets is a u64 bit set: one bit per code set.
const _: () = assert!(
    CodeSet::ALL.len() <= 64,
    "CodeSets holds at most 64 code sets"
);

impl CodeSet {
    fn bit(self) -> u64 {
        1u64 << (self as u32)
    }
    pub fn from_key(key: &str) -> Option<CodeSet> {
        CodeSet::ALL.iter().copied().find(|c| c.key() == key)
    }
}

/// The code sets one coding (or one resource's codings) belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeSets(u64);

impl CodeSets {
    pub fn contains(self, set: CodeSet) -> bool {
        self.0 & set.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn union(self, other: CodeSets) -> CodeSets {
        CodeSets(self.0 | other.0)
    }
    pub fn insert(&mut self, set: CodeSet) {
        self.0 |= set.bit();
    }
}

/// Side of the body named by a code (`dvt-model.md` §2 laterality).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Right,
    Left,
    Bilateral,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Right => "right",
            Side::Left => "left",
            Side::Bilateral => "bilateral",
        }
    }
}

/// A mapping file could not be used: which file, which entry, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    pub file: String,
    pub entry: String,
    pub problem: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry.is_empty() {
            write!(f, "{}: {}", self.file, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file, self.entry, self.problem)
        }
    }
}

impl std::error::Error for MappingError {}

/// Callers that report errors as text (`?` into `Result<_, String>`) keep working.
impl From<MappingError> for String {
    fn from(e: MappingError) -> String {
        e.to_string()
    }
}

fn err(file: &str, entry: impl Into<String>, problem: impl Into<String>) -> MappingError {
    MappingError {
        file: file.to_string(),
        entry: entry.into(),
        problem: problem.into(),
    }
}

/// How a code system's codes are compared (`dvt-model.md` §1 "Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum SystemKind {
    /// Normalised (no dot, upper case); `is-a` roots and ranges cover the codes below.
    Icd10cm,
    /// Exact; ranges compare five-character codes (see [`cpt_order`]).
    Cpt,
    /// Exact only.
    #[default]
    Other,
}

/// One disjoint stretch of a compiled range table: codes whose order key lies in
/// `lo..=hi` belong to the code sets `bits`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    lo: u64,
    hi: u64,
    bits: u64,
}

/// The ranges of one system whose bounds are compared the same way: sorted, disjoint
/// segments, so one binary search answers every range at once.
#[derive(Debug, Default)]
struct RangeTable {
    /// ICD-10-CM: the bounds' length (the code's first `len` characters are compared);
    /// 0 for CPT (whole five-character codes).
    len: usize,
    /// Ranges as loaded (lo, hi, bits); compiled into `segments` by [`RangeTable::compile`].
    raw: Vec<(u64, u64, u64)>,
    segments: Vec<Segment>,
}

impl RangeTable {
    /// Split overlapping ranges into disjoint segments, each with the union of the code
    /// sets covering it (a few hundred ranges at most: quadratic is fine, and it runs once).
    fn compile(&mut self) {
        let mut cuts: Vec<u64> = self
            .raw
            .iter()
            .flat_map(|&(lo, hi, _)| [lo, hi.saturating_add(1)])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        self.segments.clear();
        for w in cuts.windows(2) {
            let (lo, hi) = (w[0], w[1] - 1);
            let bits = self
                .raw
                .iter()
                .filter(|&&(a, b, _)| a <= lo && hi <= b)
                .fold(0, |acc, &(_, _, bits)| acc | bits);
            match self.segments.last_mut() {
                Some(last) if last.bits == bits && last.hi + 1 == lo => last.hi = hi,
                _ if bits != 0 => self.segments.push(Segment { lo, hi, bits }),
                _ => {}
            }
        }
    }

    fn lookup(&self, kind: SystemKind, code: &str) -> u64 {
        let key = match kind {
            SystemKind::Cpt => cpt_order(code),
            _ => code.get(..self.len).and_then(icd_order),
        };
        let Some(key) = key else { return 0 };
        let i = self.segments.partition_point(|s| s.lo <= key);
        match i.checked_sub(1).map(|i| self.segments[i]) {
            Some(s) if key <= s.hi => s.bits,
            _ => 0,
        }
    }
}

/// The codes one direction of a system's value sets names: what includes add, or what
/// excludes take away.
#[derive(Debug, Default)]
struct CodeIndex {
    exact: FastMap<Box<str>, u64>,
    /// ICD-10-CM `is-a` roots, normalised.
    prefixes: FastMap<Box<str>, u64>,
    /// Bit n set: some root is n characters long (only those lengths are looked up).
    prefix_lens: u32,
    ranges: Vec<RangeTable>,
}

impl CodeIndex {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty() && self.ranges.is_empty()
    }

    fn add_range(&mut self, len: usize, lo: u64, hi: u64, bits: u64) {
        let table = match self.ranges.iter().position(|t| t.len == len) {
            Some(i) => &mut self.ranges[i],
            None => {
                self.ranges.push(RangeTable {
                    len,
                    ..RangeTable::default()
                });
                self.ranges.last_mut().expect("just pushed")
            }
        };
        table.raw.push((lo, hi, bits));
    }

    /// `code` is trimmed, and normalised for ICD-10-CM.
    fn lookup(&self, kind: SystemKind, code: &str) -> u64 {
        let mut bits = self.exact.get(code).copied().unwrap_or(0);
        // Roots exist for ICD-10-CM only, whose normalised codes are ASCII (safe to slice).
        if kind == SystemKind::Icd10cm && !self.prefixes.is_empty() {
            for len in (3..=code.len()).filter(|l| self.prefix_lens & (1 << l) != 0) {
                if let Some(b) = self.prefixes.get(&code[..len]) {
                    bits |= b;
                }
            }
        }
        for table in &self.ranges {
            bits |= table.lookup(kind, code);
        }
        bits
    }
}

#[derive(Debug, Default)]
struct SystemIndex {
    kind: SystemKind,
    include: CodeIndex,
    /// `compose.exclude`: a code here never matches the code sets named, whatever the
    /// includes say.
    exclude: CodeIndex,
}

impl SystemIndex {
    fn index_mut(&mut self, exclude: bool) -> &mut CodeIndex {
        if exclude {
            &mut self.exclude
        } else {
            &mut self.include
        }
    }
}

/// The order CPT ranges compare codes in, or `None` if `code` is not a CPT code. A CPT
/// code is five characters: five digits (Category I), or four digits and a letter
/// (Category II `0001F`, Category III `0042T`, PLA `0001U`, MAAA `0002M`). Codes of one
/// kind compare by their number; kinds never mix, so a range of Category II codes can
/// never take in a Category III code (`0001F`-`0015F` holds `0005F`, never `0005T`).
fn cpt_order(code: &str) -> Option<u64> {
    let b = code.as_bytes();
    if b.len() != 5 || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = |s: &[u8]| s.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    match b[4] {
        d if d.is_ascii_digit() => Some(digits(b)),
        l if l.is_ascii_uppercase() => Some(u64::from(l - b'A' + 1) * 100_000 + digits(&b[..4])),
        _ => None,
    }
}

/// The order ICD-10-CM ranges compare normalised codes in: character by character,
/// digits before letters (the tabular order: `I82.49` < `I82.4Y`). At most 12 characters
/// (base 36 fits a u64).
fn icd_order(code: &str) -> Option<u64> {
    if code.is_empty() || code.len() > 12 {
        return None;
    }
    code.bytes().try_fold(0u64, |n, c| {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        Some(n * 36 + u64::from(v))
    })
}

/// Per code set: where it came from and how many codes it holds (for `mappings check`).
#[derive(Debug, Clone, Default)]
pub struct CodeSetInfo {
    pub value_sets: Vec<String>,
    pub codes: usize,
    pub is_a_roots: usize,
    pub ranges: usize,
    /// Codes, roots and ranges of `compose.exclude`.
    pub excludes: usize,
}

/// Loaded and compiled mappings. Immutable and `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct Mappings {
    /// The mapping set's id (`[model] id`, e.g. `dvt-cds-default`): with `version`, what
    /// discovery and every card name, so an answer can be traced to the knowledge behind it.
    pub id: String,
    /// The mapping set's version (`[model] version`).
    pub version: String,
    pub model: Model,
    systems: Vec<SystemIndex>,
    system_ids: FastMap<Box<str>, usize>,
    info: Vec<CodeSetInfo>,
    laterality: FastMap<Box<str>, Side>,
    body_sites: FastMap<Box<str>, Side>,
    /// `[medication-names]`, lower case, found in a text in one pass.
    medication_names: MedicationNames,
}

/// The names of `[medication-names]` (lower case) and the code set each stands for,
/// searched together: a record has a text for every medication, and one search per name
/// (109 names) took 6 % of a hook call's CPU (measured under load).
#[derive(Debug, Default)]
struct MedicationNames {
    /// Every occurrence of every name, overlapping ones too (one name may hold another).
    /// `None` until the names are built.
    finder: Option<aho_corasick::AhoCorasick>,
    /// The code set of each name, by the finder's pattern id.
    sets: Vec<CodeSet>,
}

impl MedicationNames {
    fn new(names: Vec<(String, CodeSet)>) -> Result<MedicationNames, aho_corasick::BuildError> {
        let finder = aho_corasick::AhoCorasick::new(names.iter().map(|(name, _)| name))?;
        let sets = names.into_iter().map(|(_, set)| set).collect();
        Ok(MedicationNames {
            finder: Some(finder),
            sets,
        })
    }

    /// The code sets whose names occur in `text` (lower case) with no letter or digit
    /// right before or after them.
    fn sets_in(&self, text: &str) -> CodeSets {
        let is_word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let mut sets = CodeSets::default();
        let Some(finder) = &self.finder else {
            return sets;
        };
        for found in finder.find_overlapping_iter(text) {
            let whole_word = !is_word_char(text[..found.start()].chars().next_back())
                && !is_word_char(text[found.end()..].chars().next());
            if whole_word {
                sets.insert(self.sets[found.pattern().as_usize()]);
            }
        }
        sets
    }
}

/// `str::trim`, with a fast path for the usual case (nothing to trim): `trim` decodes
/// Unicode, and it ran twice for every coding of every resource (measured). Every
/// Unicode white space character is either ASCII white space or not ASCII at all, so
/// ends that are printable ASCII cannot be trimmed.
#[inline]
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// Normalise an ICD-10-CM code: trim, drop dots, upper case. `None` if it does not fit.
pub fn normalise_icd(code: &str, buf: &mut [u8; 16]) -> Option<usize> {
    let mut n = 0;
    for b in trim(code).bytes() {
        if b == b'.' {
            continue;
        }
        if n == buf.len() || !b.is_ascii_alphanumeric() {
            return None;
        }
        buf[n] = b.to_ascii_uppercase();
        n += 1;
    }
    (n > 0).then_some(n)
}

fn normalise_icd_string(code: &str) -> Option<String> {
    let mut buf = [0u8; 16];
    let n = normalise_icd(code, &mut buf)?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The embedded mapping set's `[model] id` and `version`, from its `model.toml` alone
/// (for `dvt-cds --version`, which should not compile every value set to print a line).
/// `None` only for a build whose embedded `model.toml` is missing or unreadable, which
/// [`Mappings::embedded`] would refuse too.
pub fn embedded_identity() -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct File {
        model: Identity,
    }
    #[derive(serde::Deserialize)]
    struct Identity {
        id: String,
        version: String,
    }
    let (_, text) = embedded::FILES.iter().find(|(p, _)| *p == "model.toml")?;
    let file: File = toml::from_str(text).ok()?;
    Some((file.model.id, file.model.version))
}

impl Mappings {
    /// The mappings compiled into the binary.
    pub fn embedded() -> Result<Mappings, MappingError> {
        let files: Vec<(String, String)> = embedded::FILES
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        Mappings::from_files("mappings", &files)
    }

    /// Load a mapping set from a directory (`--mappings DIR`): `DIR/model.toml` and
    /// `DIR/valuesets/*.json`. The error names the file, the entry and what is wrong.
    pub fn load_dir(dir: &Path) -> Result<Mappings, MappingError> {
        let shown = dir.display().to_string();
        let mut files = Vec::new();
        let model = dir.join("model.toml");
        let text = std::fs::read_to_string(&model).map_err(|e| {
            err(
                &format!("{shown}/model.toml"),
                "",
                format!("cannot read: {e}"),
            )
        })?;
        files.push(("model.toml".to_string(), text));
        let vs_dir = dir.join("valuesets");
        let entries = std::fs::read_dir(&vs_dir).map_err(|e| {
            err(
                &format!("{shown}/valuesets"),
                "",
                format!("cannot read: {e}"),
            )
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| err(&format!("{shown}/valuesets"), "", e.to_string()))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = format!("valuesets/{}", entry.file_name().to_string_lossy());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    err(&format!("{shown}/{name}"), "", format!("cannot read: {e}"))
                })?;
                files.push((name, text));
            }
        }
        files.sort();
        Mappings::from_files(&shown, &files)
    }

    /// Build from (path relative to the mappings directory, contents) pairs.
    pub fn from_files(root: &str, files: &[(String, String)]) -> Result<Mappings, MappingError> {
        let model_text = files
            .iter()
            .find(|(p, _)| p == "model.toml")
            .map(|(_, t)| t.as_str())
            .ok_or_else(|| err(&format!("{root}/model.toml"), "", "file missing"))?;
        let model_file = format!("{root}/model.toml");
        let model = Model::parse(&model_file, model_text)?;
        let value_sets = parse_value_set_files(root, files)?;
        let mut m = Mappings::empty(model);
        let used = m.index_code_sets(&model_file, &value_sets)?;
        m.check_code_set_keys(&model_file)?;
        check_all_listed(&value_sets, &used)?;
        m.compile_ranges();
        m.build_laterality(&model_file)?;
        m.build_medication_names(&model_file)?;
        Ok(m)
    }

    /// A mapping set for `model` with nothing indexed yet.
    fn empty(model: Model) -> Mappings {
        Mappings {
            id: model.model.id.clone(),
            version: model.model.version.clone(),
            model,
            systems: Vec::new(),
            system_ids: FastMap::default(),
            info: vec![CodeSetInfo::default(); CodeSet::ALL.len()],
            laterality: FastMap::default(),
            body_sites: FastMap::default(),
            medication_names: MedicationNames::default(),
        }
    }

    /// Index the value sets `[codesets]` lists for every code set the model uses: each
    /// code set must be listed and name at least one value set, and each value set it
    /// names must exist. Returns the ids of the value sets indexed.
    fn index_code_sets<'v>(
        &mut self,
        model_file: &str,
        value_sets: &'v ValueSets,
    ) -> Result<HashSet<&'v str>, MappingError> {
        let mut used: HashSet<&str> = HashSet::new();
        for &set in CodeSet::ALL {
            let ids =
                self.model.codesets.get(set.key()).ok_or_else(|| {
                    err(model_file, format!("[codesets] {}", set.key()), "missing")
                })?;
            if ids.is_empty() {
                return Err(err(
                    model_file,
                    format!("[codesets] {}", set.key()),
                    "lists no value set",
                ));
            }
            for id in ids.clone() {
                let (file, vs) = value_sets.get(&id).ok_or_else(|| {
                    err(
                        model_file,
                        format!("[codesets] {}", set.key()),
                        format!("value set \"{id}\" not found (expected valuesets/{id}.json)"),
                    )
                })?;
                used.insert(
                    value_sets
                        .get_key_value(&id)
                        .map(|(k, _)| k.as_str())
                        .unwrap_or(""),
                );
                self.add_value_set(set, file, vs)?;
                self.info[set as usize].value_sets.push(id.clone());
            }
        }
        Ok(used)
    }

    /// `[codesets]` may name only code sets the model uses: any other key is a typo or a
    /// set nothing reads.
    fn check_code_set_keys(&self, model_file: &str) -> Result<(), MappingError> {
        for key in self.model.codesets.keys() {
            if CodeSet::from_key(key).is_none() {
                return Err(err(
                    model_file,
                    format!("[codesets] {key}"),
                    "unknown code set (the model does not use it)",
                ));
            }
        }
        Ok(())
    }

    /// Compile every range table into disjoint segments, once all value sets are in
    /// (ranges of different value sets may overlap).
    fn compile_ranges(&mut self) {
        for system in &mut self.systems {
            for table in system
                .include
                .ranges
                .iter_mut()
                .chain(system.exclude.ranges.iter_mut())
            {
                table.compile();
            }
        }
    }

    /// `[medication-names]`: each key a code set, each name a non-empty word or phrase.
    fn build_medication_names(&mut self, model_file: &str) -> Result<(), MappingError> {
        let mut all = Vec::new();
        for (key, names) in &self.model.medication_names {
            let entry = format!("[medication-names] {key}");
            let set = CodeSet::from_key(key)
                .ok_or_else(|| err(model_file, &entry, "unknown code set"))?;
            for name in names {
                let name = name.trim();
                if name.is_empty() {
                    return Err(err(model_file, &entry, "a name is empty"));
                }
                all.push((name.to_lowercase(), set));
            }
        }
        self.medication_names = MedicationNames::new(all)
            .map_err(|e| err(model_file, "[medication-names]", e.to_string()))?;
        Ok(())
    }

    fn system_index(&mut self, system: &str) -> usize {
        if let Some(&i) = self.system_ids.get(system) {
            return i;
        }
        let i = self.systems.len();
        let kind = match system {
            ICD10CM => SystemKind::Icd10cm,
            CPT => SystemKind::Cpt,
            _ => SystemKind::Other,
        };
        self.systems.push(SystemIndex {
            kind,
            ..SystemIndex::default()
        });
        self.system_ids.insert(system.into(), i);
        for (alias, canonical) in SYSTEM_ALIASES {
            if *canonical == system {
                self.system_ids.insert((*alias).into(), i);
            }
        }
        i
    }

    fn add_value_set(
        &mut self,
        set: CodeSet,
        file: &str,
        vs: &ParsedValueSet,
    ) -> Result<(), MappingError> {
        for inc in &vs.includes {
            self.add_part(set, file, inc, false)?;
        }
        for exc in &vs.excludes {
            self.add_part(set, file, exc, true)?;
        }
        Ok(())
    }

    /// Add one `compose.include` (or, with `exclude`, one `compose.exclude`) to the index.
    fn add_part(
        &mut self,
        set: CodeSet,
        file: &str,
        part: &ParsedInclude,
        exclude: bool,
    ) -> Result<(), MappingError> {
        let si = self.system_index(&part.system);
        let kind = self.systems[si].kind;
        let icd_key = |entry: &str, code: &str| {
            normalise_icd_string(code)
                .ok_or_else(|| err(file, entry, format!("\"{code}\" is not an ICD-10-CM code")))
        };
        let mut added = 0;
        for (entry, code) in &part.codes {
            let key = if kind == SystemKind::Icd10cm {
                icd_key(entry, code)?
            } else {
                code.trim().to_string()
            };
            let index = self.systems[si].index_mut(exclude);
            *index.exact.entry(key.into()).or_default() |= set.bit();
            added += 1;
        }
        if !exclude {
            self.info[set as usize].codes += added;
        }
        for (entry, root) in &part.is_a {
            let key = icd_key(entry, root)?;
            let index = self.systems[si].index_mut(exclude);
            index.prefix_lens |= 1 << key.len().min(31);
            *index.prefixes.entry(key.into()).or_default() |= set.bit();
            added += 1;
            if !exclude {
                self.info[set as usize].is_a_roots += 1;
            }
        }
        for r in &part.ranges {
            self.systems[si]
                .index_mut(exclude)
                .add_range(r.len, r.lo, r.hi, set.bit());
            added += 1;
            if !exclude {
                self.info[set as usize].ranges += 1;
            }
        }
        if exclude {
            self.info[set as usize].excludes += added;
        }
        Ok(())
    }

    fn build_laterality(&mut self, model_file: &str) -> Result<(), MappingError> {
        let lat = self.model.laterality.clone();
        for (side, codes, name) in [
            (Side::Right, &lat.right, "right"),
            (Side::Left, &lat.left, "left"),
            (Side::Bilateral, &lat.bilateral, "bilateral"),
        ] {
            for c in codes {
                let k = normalise_icd_string(c).ok_or_else(|| {
                    err(
                        model_file,
                        format!("[laterality] {name}"),
                        format!("\"{c}\" is not an ICD-10-CM code"),
                    )
                })?;
                self.laterality.insert(k.into(), side);
            }
        }
        for (side, codes) in [
            (Side::Right, &lat.body_site_right),
            (Side::Left, &lat.body_site_left),
            (Side::Bilateral, &lat.body_site_bilateral),
        ] {
            for c in codes {
                self.body_sites.insert(c.trim().into(), side);
            }
        }
        Ok(())
    }

    /// The code sets a (system, code) pair belongs to (`dvt-model.md` §1 "Codes"):
    /// exact match after trimming; ICD-10-CM also without its dot and below an `is-a`
    /// root; CPT and ICD-10-CM within a `code-range`; never a code a value set of the
    /// code set excludes.
    pub fn classify(&self, system: &str, code: &str) -> CodeSets {
        let Some(&si) = self.system_ids.get(trim(system)) else {
            return CodeSets::default();
        };
        let idx = &self.systems[si];
        let mut buf = [0u8; 16];
        let key = if idx.kind == SystemKind::Icd10cm {
            let Some(n) = normalise_icd(code, &mut buf) else {
                return CodeSets::default();
            };
            let Ok(norm) = std::str::from_utf8(&buf[..n]) else {
                return CodeSets::default();
            };
            norm
        } else {
            trim(code)
        };
        let mut bits = idx.include.lookup(idx.kind, key);
        // An excluded code never matches, even where an is-a root or a range covers it.
        if bits != 0 && !idx.exclude.is_empty() {
            bits &= !idx.exclude.lookup(idx.kind, key);
        }
        CodeSets(bits)
    }

    /// The side an ICD-10-CM code names (`dvt-model.md` §2 laterality), if any.
    pub fn icd_side(&self, system: &str, code: &str) -> Option<Side> {
        if self
            .system_ids
            .get(trim(system))
            .map(|&i| self.systems[i].kind)
            != Some(SystemKind::Icd10cm)
        {
            return None;
        }
        let mut buf = [0u8; 16];
        let n = normalise_icd(code, &mut buf)?;
        let norm = std::str::from_utf8(&buf[..n]).ok()?;
        (3..=n)
            .rev()
            .find_map(|len| self.laterality.get(&norm[..len]).copied())
    }

    /// The side a SNOMED CT bodySite / laterality code names, if any.
    pub fn body_site_side(&self, system: &str, code: &str) -> Option<Side> {
        if self.system_ids.get(trim(system)).copied() != self.system_ids.get(SNOMED).copied() {
            return None;
        }
        self.body_sites.get(trim(code)).copied()
    }

    /// The medication code sets whose generic or brand names (`[medication-names]`) occur
    /// in `text` as whole words, ignoring case (`dvt-model.md` §1 Medications: a medication
    /// known only by text or display). "Eliquis 5 mg" names apixaban's set; "Xareltox"
    /// names nothing.
    pub fn medication_name_sets(&self, text: &str) -> CodeSets {
        self.medication_names.sets_in(&text.to_lowercase())
    }

    /// Is this system ICD-10-CM (or one of its aliases)?
    pub fn is_icd10cm(&self, system: &str) -> bool {
        self.system_ids
            .get(trim(system))
            .map(|&i| self.systems[i].kind)
            == Some(SystemKind::Icd10cm)
    }

    /// Where a code set came from and how big it is.
    pub fn info(&self, set: CodeSet) -> &CodeSetInfo {
        &self.info[set as usize]
    }
}

/// `dvt-cds mappings check [DIR]`: the report to print (each code set with its code
/// count), or the error naming file and entry.
pub fn check_command(dir: Option<&Path>) -> Result<String, String> {
    let m = match dir {
        Some(d) => Mappings::load_dir(d)?,
        None => Mappings::embedded()?,
    };
    let mut out = format!(
        "mappings OK: {} version {} ({}): {}\n",
        m.id,
        m.version,
        dir.map_or("embedded".to_string(), |d| d.display().to_string()),
        m.model.model.name,
    );
    for &set in CodeSet::ALL {
        let i = m.info(set);
        out.push_str(&format!(
            "{:<34} {:>6} codes {:>3} is-a roots {:>3} ranges {:>3} excluded  from {}\n",
            set.key(),
            i.codes,
            i.is_a_roots,
            i.ranges,
            i.excludes,
            i.value_sets.join(", ")
        ));
    }
    Ok(out)
}

// ---- ValueSet parsing (the subset mappings-format.md allows) ----

/// One `compose.include` or `compose.exclude`.
#[derive(Debug)]
struct ParsedInclude {
    system: String,
    /// (entry path, code)
    codes: Vec<(String, String)>,
    is_a: Vec<(String, String)>,
    ranges: Vec<ParsedRange>,
}

/// A `code-range` filter, checked and turned into order keys ([`cpt_order`],
/// [`icd_order`]).
#[derive(Debug)]
struct ParsedRange {
    /// ICD-10-CM: the bounds' length; 0 for CPT.
    len: usize,
    lo: u64,
    hi: u64,
}

#[derive(Debug)]
struct ParsedValueSet {
    id: String,
    includes: Vec<ParsedInclude>,
    excludes: Vec<ParsedInclude>,
}

/// The filter property of a code range (project-defined; `mappings/README.md`).
pub const CODE_RANGE: &str = "code-range";

fn non_empty_str<'a>(
    file: &str,
    entry: &str,
    v: Option<&'a serde_json::Value>,
) -> Result<&'a str, MappingError> {
    match v {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(serde_json::Value::String(_)) => Err(err(file, entry, "is empty")),
        Some(_) => Err(err(file, entry, "must be a string")),
        None => Err(err(file, entry, "is missing")),
    }
}

/// Value sets by id, each with the file (as shown in errors) it came from.
type ValueSets = HashMap<String, (String, ParsedValueSet)>;

/// Parse every `valuesets/*.json` file of `files`; the file name must match its `id`.
fn parse_value_set_files(
    root: &str,
    files: &[(String, String)],
) -> Result<ValueSets, MappingError> {
    let mut value_sets = ValueSets::new();
    for (path, text) in files {
        let Some(stem) = path
            .strip_prefix("valuesets/")
            .and_then(|p| p.strip_suffix(".json"))
        else {
            continue;
        };
        let file = format!("{root}/{path}");
        let vs = parse_value_set(&file, text)?;
        if vs.id != stem {
            return Err(err(
                &file,
                "id",
                format!("is \"{}\" but the file is named \"{stem}.json\"", vs.id),
            ));
        }
        value_sets.insert(stem.to_string(), (file, vs));
    }
    Ok(value_sets)
}

/// A value set file `[codesets]` does not list would be silently ignored: refuse the
/// first such file (by id, so the error does not depend on hash order).
fn check_all_listed(value_sets: &ValueSets, used: &HashSet<&str>) -> Result<(), MappingError> {
    let mut unused: Vec<&String> = value_sets
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .collect();
    unused.sort();
    if let Some(id) = unused.first() {
        return Err(err(
            &value_sets[*id].0,
            "",
            "not listed under [codesets] in model.toml, so it would be ignored: list it",
        ));
    }
    Ok(())
}

fn parse_value_set(file: &str, text: &str) -> Result<ParsedValueSet, MappingError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        err(
            file,
            format!("line {}", e.line()),
            format!("invalid JSON: {e}"),
        )
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| err(file, "", "must be a JSON object (a FHIR ValueSet)"))?;
    if obj.get("resourceType").and_then(|r| r.as_str()) != Some("ValueSet") {
        return Err(err(file, "resourceType", "must be \"ValueSet\""));
    }
    let id = non_empty_str(file, "id", obj.get("id"))?.to_string();
    non_empty_str(file, "url", obj.get("url"))?;
    if obj.contains_key("expansion") {
        return Err(err(
            file,
            "expansion",
            "not read: put the codes in compose.include",
        ));
    }
    let Some(compose) = obj.get("compose") else {
        return Ok(ParsedValueSet {
            id,
            includes: Vec::new(),
            excludes: Vec::new(),
        });
    };
    let compose = compose
        .as_object()
        .ok_or_else(|| err(file, "compose", "must be an object"))?;
    for key in compose.keys() {
        if key != "include" && key != "exclude" {
            return Err(err(
                file,
                format!("compose.{key}"),
                "not supported (only compose.include and compose.exclude)",
            ));
        }
    }
    let includes = parse_parts(file, "include", compose.get("include"))?
        .ok_or_else(|| err(file, "compose.include", "must be a non-empty array"))?;
    let excludes = parse_parts(file, "exclude", compose.get("exclude"))?.unwrap_or_default();
    Ok(ParsedValueSet {
        id,
        includes,
        excludes,
    })
}

/// `compose.include` or `compose.exclude` (`which`): `None` when absent.
fn parse_parts(
    file: &str,
    which: &str,
    parts: Option<&serde_json::Value>,
) -> Result<Option<Vec<ParsedInclude>>, MappingError> {
    let Some(parts) = parts else {
        return Ok(None);
    };
    let at = format!("compose.{which}");
    let parts = parts
        .as_array()
        .ok_or_else(|| err(file, &at, "must be a non-empty array"))?;
    if parts.is_empty() {
        return Err(err(file, &at, "must not be empty"));
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| parse_part(file, &format!("{at}[{i}]"), part))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// One include or exclude: a system, a source, and either codes or filters.
fn parse_part(
    file: &str,
    at: &str,
    inc: &serde_json::Value,
) -> Result<ParsedInclude, MappingError> {
    let inc = inc
        .as_object()
        .ok_or_else(|| err(file, at, "must be an object"))?;
    check_part_keys(file, at, inc)?;
    let system = non_empty_str(file, &format!("{at}.system"), inc.get("system"))?
        .trim()
        .to_string();
    require_source(file, at, inc)?;
    let mut pi = ParsedInclude {
        system: system.clone(),
        codes: Vec::new(),
        is_a: Vec::new(),
        ranges: Vec::new(),
    };
    match (inc.get("concept"), inc.get("filter")) {
        (Some(_), Some(_)) => {
            return Err(err(
                file,
                at,
                "has both concept and filter (FHIR allows one)",
            ));
        }
        (None, None) => return Err(err(file, at, "has neither concept nor filter")),
        (Some(concepts), None) => pi.codes = parse_concepts(file, at, concepts)?,
        (None, Some(filters)) => parse_filters(file, at, &system, filters, &mut pi)?,
    }
    Ok(pi)
}

/// An include may carry only the keys the index reads: a `valueSet` reference (or any
/// other key) would silently widen or narrow the set if it were ignored.
fn check_part_keys(
    file: &str,
    at: &str,
    inc: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), MappingError> {
    for key in inc.keys() {
        if !matches!(
            key.as_str(),
            "extension" | "system" | "version" | "concept" | "filter"
        ) {
            return Err(err(
                file,
                format!("{at}.{key}"),
                "not supported (valueSet references are not followed: list the codes)",
            ));
        }
    }
    Ok(())
}

/// Every include names where its codes come from: a [`SOURCE_EXT`] extension with a
/// non-blank `valueString`.
fn require_source(
    file: &str,
    at: &str,
    inc: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), MappingError> {
    let has_source = inc
        .get("extension")
        .and_then(|e| e.as_array())
        .is_some_and(|exts| {
            exts.iter().any(|e| {
                e.get("url").and_then(|u| u.as_str()) == Some(SOURCE_EXT)
                    && e.get("valueString")
                        .and_then(|s| s.as_str())
                        .is_some_and(|s| !s.trim().is_empty())
            })
        });
    if !has_source {
        return Err(err(
            file,
            format!("{at}.extension"),
            format!("needs a source extension ({SOURCE_EXT}) saying where the codes come from"),
        ));
    }
    Ok(())
}

/// `concept`: a non-empty array of `{code}` objects; returns (entry path, code) pairs.
fn parse_concepts(
    file: &str,
    at: &str,
    concepts: &serde_json::Value,
) -> Result<Vec<(String, String)>, MappingError> {
    let arr = concepts
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| err(file, format!("{at}.concept"), "must be a non-empty array"))?;
    let mut codes = Vec::with_capacity(arr.len());
    for (j, c) in arr.iter().enumerate() {
        let cat = format!("{at}.concept[{j}]");
        let c = c
            .as_object()
            .ok_or_else(|| err(file, &cat, "must be an object"))?;
        for key in c.keys() {
            if !matches!(
                key.as_str(),
                "code" | "display" | "extension" | "designation"
            ) {
                return Err(err(file, format!("{cat}.{key}"), "not supported"));
            }
        }
        let code = non_empty_str(file, &format!("{cat}.code"), c.get("code"))?;
        if code.chars().any(char::is_whitespace) {
            return Err(err(file, format!("{cat}.code"), "contains whitespace"));
        }
        codes.push((cat, code.to_string()));
    }
    Ok(codes)
}

/// `filter`: a non-empty array of `is-a` roots (ICD-10-CM only) or one `code-range`,
/// added to `pi`.
fn parse_filters(
    file: &str,
    at: &str,
    system: &str,
    filters: &serde_json::Value,
    pi: &mut ParsedInclude,
) -> Result<(), MappingError> {
    let arr = filters
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| err(file, format!("{at}.filter"), "must be a non-empty array"))?;
    for (j, f) in arr.iter().enumerate() {
        let fat = format!("{at}.filter[{j}]");
        let prop = non_empty_str(file, &format!("{fat}.property"), f.get("property"))?;
        let op = non_empty_str(file, &format!("{fat}.op"), f.get("op"))?;
        let value = non_empty_str(file, &format!("{fat}.value"), f.get("value"))?;
        match (prop, op) {
            ("concept", "is-a") => {
                if system != ICD10CM {
                    return Err(err(
                        file,
                        &fat,
                        "is-a filters are only supported for ICD-10-CM: list the codes explicitly",
                    ));
                }
                pi.is_a.push((fat, value.to_string()));
            }
            (CODE_RANGE, "=") => {
                // FHIR joins the filters of one include with AND: a range with
                // another filter would mean their intersection, which nobody means.
                if arr.len() != 1 {
                    return Err(err(
                        file,
                        &fat,
                        "a code-range filter must be its include's only filter (FHIR \
                         combines the filters of one include with AND): give each \
                         range its own include",
                    ));
                }
                pi.ranges.push(parse_range(file, &fat, system, value)?);
            }
            _ => {
                return Err(err(
                    file,
                    &fat,
                    format!(
                        "only property \"concept\" with op \"is-a\", or property \
                         \"{CODE_RANGE}\" with op \"=\", is supported, not {prop} {op}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A `code-range` value, `FIRST-LAST` (both ends included), in the order of its system:
/// CPT by [`cpt_order`], ICD-10-CM by [`icd_order`] on bounds of one length, covering the
/// codes below them (`D37-D44` holds `D44.9`).
fn parse_range(
    file: &str,
    at: &str,
    system: &str,
    value: &str,
) -> Result<ParsedRange, MappingError> {
    let bad = |problem: String| err(file, format!("{at}.value"), problem);
    let Some((first, last)) = value
        .split_once('-')
        .map(|(a, b)| (a.trim(), b.trim()))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('-'))
    else {
        return Err(bad(format!(
            "\"{value}\" is not a range: write FIRST-LAST with one hyphen, e.g. 77261-77799"
        )));
    };
    let (len, lo, hi) = match system {
        CPT => {
            let order = |code: &str| {
                cpt_order(code).ok_or_else(|| {
                    bad(format!(
                        "\"{code}\" is not a CPT code (five characters: five digits, or four \
                         digits and an upper-case letter such as 0001F or 0042T)"
                    ))
                })
            };
            let (lo, hi) = (order(first)?, order(last)?);
            if lo / 100_000 != hi / 100_000 {
                return Err(bad(format!(
                    "\"{first}\" and \"{last}\" are different kinds of CPT code (five digits, \
                     or four digits and the same letter): one range per kind"
                )));
            }
            (0, lo, hi)
        }
        ICD10CM => {
            let order = |code: &str| {
                normalise_icd_string(code)
                    .filter(|n| n.len() >= 3)
                    .and_then(|n| Some((n.len(), icd_order(&n)?)))
                    .ok_or_else(|| bad(format!("\"{code}\" is not an ICD-10-CM code")))
            };
            let ((len, lo), (last_len, hi)) = (order(first)?, order(last)?);
            if len != last_len {
                return Err(bad(format!(
                    "\"{first}\" and \"{last}\" have different lengths: both ends of an \
                     ICD-10-CM range name the same level (D37-D44, I82.40-I82.49)"
                )));
            }
            (len, lo, hi)
        }
        _ => {
            return Err(err(
                file,
                at,
                "code ranges are only supported for CPT and ICD-10-CM: list the codes explicitly",
            ));
        }
    };
    if lo > hi {
        return Err(bad(format!("\"{first}\" comes after \"{last}\"")));
    }
    Ok(ParsedRange { len, lo, hi })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> String {
        model_with(&[(CodeSet::LegPain, "leg-pain")])
    }

    /// The shipped model.toml with every code set pointing at the value set `sets` names
    /// for it, or at `empty`.
    fn model_with(sets: &[(CodeSet, &str)]) -> String {
        let mut s = include_str!("../../mappings/model.toml").to_string();
        let start = s.find("[codesets]").unwrap();
        let end = s.find("# Windows").unwrap();
        let mut table = String::from("[codesets]\n");
        for c in CodeSet::ALL {
            let vs = sets
                .iter()
                .find(|(set, _)| set == c)
                .map_or("empty", |(_, vs)| vs);
            table.push_str(&format!("{} = [\"{vs}\"]\n", c.key()));
        }
        s.replace_range(start..end, &table);
        s
    }

    const LEG_PAIN: &str = r#"{"resourceType":"ValueSet","id":"leg-pain","url":"x",
      "compose":{"include":[
        {"extension":[{"url":"https://dvt-cds.example.org/fhir/StructureDefinition/source","valueString":"t"}],
         "system":"http://hl7.org/fhir/sid/icd-10-cm","filter":[{"property":"concept","op":"is-a","value":"M79.66"}]},
        {"extension":[{"url":"https://dvt-cds.example.org/fhir/StructureDefinition/source","valueString":"t"}],
         "system":"http://snomed.info/sct","concept":[{"code":"300954003"}]}]}}"#;
    const EMPTY: &str = r#"{"resourceType":"ValueSet","id":"empty","url":"y"}"#;

    fn files(leg: &str) -> Vec<(String, String)> {
        vec![
            ("model.toml".into(), tiny_model()),
            ("valuesets/leg-pain.json".into(), leg.into()),
            ("valuesets/empty.json".into(), EMPTY.into()),
        ]
    }

    #[test]
    fn mappings_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mappings>();
    }

    #[test]
    fn icd_is_a_matches_with_and_without_dot_and_whitespace() {
        let m = Mappings::from_files("t", &files(LEG_PAIN)).unwrap();
        for code in ["M79.662", "M79662", " m79.661 ", "M79.66"] {
            assert!(
                m.classify(ICD10CM, code).contains(CodeSet::LegPain),
                "{code}"
            );
        }
        assert!(!m.classify(ICD10CM, "M79.6").contains(CodeSet::LegPain));
        assert!(!m.classify(ICD10CM, "M79.605").contains(CodeSet::LegPain));
        assert!(m.classify(SNOMED, " 300954003 ").contains(CodeSet::LegPain));
        assert!(
            m.classify("urn:oid:2.16.840.1.113883.6.96", "300954003")
                .contains(CodeSet::LegPain)
        );
        assert!(!m.classify(SNOMED, "3009540030").contains(CodeSet::LegPain));
        assert!(!m.classify(LOINC, "300954003").contains(CodeSet::LegPain));
        assert_eq!(m.icd_side(ICD10CM, "M79662"), Some(Side::Left));
        assert_eq!(m.icd_side(ICD10CM, "R22.41"), Some(Side::Right));
        assert_eq!(m.icd_side(ICD10CM, "M79.669"), None);
    }

    #[test]
    fn refuses_both_concept_and_filter_naming_file_and_entry() {
        let bad = LEG_PAIN.replace(
            r#""filter":[{"property""#,
            r#""concept":[{"code":"M79.661"}],"filter":[{"property""#,
        );
        let e = Mappings::from_files("t", &files(&bad)).unwrap_err();
        assert_eq!(e.file, "t/valuesets/leg-pain.json");
        assert_eq!(e.entry, "compose.include[0]");
        assert!(e.to_string().contains("both concept and filter"), "{e}");
    }

    #[test]
    fn refuses_is_a_on_snomed_and_exclude() {
        let bad = LEG_PAIN.replace(
            r#""concept":[{"code":"300954003"}]"#,
            r#""filter":[{"property":"concept","op":"is-a","value":"300954003"}]"#,
        );
        let e = Mappings::from_files("t", &files(&bad)).unwrap_err();
        assert_eq!(e.entry, "compose.include[1].filter[0]");
        let bad = LEG_PAIN.replace(r#""compose":{"#, r#""compose":{"exclude":[],"#);
        let e = Mappings::from_files("t", &files(&bad)).unwrap_err();
        assert_eq!(e.entry, "compose.exclude");
    }

    #[test]
    fn refuses_bad_model_value_naming_the_key() {
        let mut f = files(LEG_PAIN);
        f[0].1 = f[0].1.replace("d-dimer = 3", "d-dimer = \"three\"");
        let e = Mappings::from_files("t", &f).unwrap_err();
        assert_eq!(e.file, "t/model.toml");
        assert!(e.to_string().contains("d-dimer"), "{e}");
    }

    #[test]
    fn refuses_missing_value_set() {
        let mut f = files(LEG_PAIN);
        f.remove(1);
        let e = Mappings::from_files("t", &f).unwrap_err();
        assert_eq!(e.entry, "[codesets] leg-pain");
        assert!(e.problem.contains("not found"));
    }

    #[test]
    fn an_unlisted_value_set_is_refused_first_by_id_whatever_the_hash_order() {
        let vs = |id: &str| ParsedValueSet {
            id: id.into(),
            includes: Vec::new(),
            excludes: Vec::new(),
        };
        let mut sets = ValueSets::new();
        for id in ["c-set", "a-set", "b-set", "listed"] {
            sets.insert(id.into(), (format!("t/valuesets/{id}.json"), vs(id)));
        }
        let used: HashSet<&str> = ["listed"].into_iter().collect();
        let e = check_all_listed(&sets, &used).unwrap_err();
        assert_eq!(e.file, "t/valuesets/a-set.json");
        assert_eq!(e.entry, "");
        let used: HashSet<&str> = ["a-set", "b-set", "c-set", "listed"].into_iter().collect();
        assert!(check_all_listed(&sets, &used).is_ok());
    }

    #[test]
    fn the_source_extension_needs_our_url_and_a_non_blank_value() {
        let inc = |ext: serde_json::Value| serde_json::json!({"extension": ext, "system": "s", "concept": [{"code": "c"}]});
        let check = |ext| {
            let v = inc(ext);
            require_source("f", "compose.include[0]", v.as_object().unwrap())
        };
        assert!(
            check(serde_json::json!([{"url": SOURCE_EXT, "valueString": "site list"}])).is_ok()
        );
        // Any one extension of several may carry the source.
        assert!(
            check(serde_json::json!([{"url": "other"}, {"url": SOURCE_EXT, "valueString": "x"}]))
                .is_ok()
        );
        for bad in [
            serde_json::json!([{"url": SOURCE_EXT, "valueString": "  "}]),
            serde_json::json!([{"url": SOURCE_EXT}]),
            serde_json::json!([{"url": "other", "valueString": "x"}]),
            serde_json::json!({"url": SOURCE_EXT, "valueString": "x"}),
        ] {
            let e = check(bad.clone()).unwrap_err();
            assert_eq!(e.entry, "compose.include[0].extension", "{bad}");
        }
    }

    // ---- code ranges and compose.exclude ----

    const SRC: &str = r#""extension":[{"url":"https://dvt-cds.example.org/fhir/StructureDefinition/source","valueString":"t"}]"#;

    /// One include (or exclude) element: `system` and either a code-range `value` or,
    /// when `value` starts with `[`, a concept list / filter given as raw JSON.
    fn part(system: &str, body: &str) -> String {
        if body.starts_with('"') {
            format!(r#"{{{SRC},"system":"{system}",{body}}}"#)
        } else {
            format!(
                r#"{{{SRC},"system":"{system}","filter":[{{"property":"code-range","op":"=","value":"{body}"}}]}}"#
            )
        }
    }

    fn value_set(id: &str, includes: &[String], excludes: &[String]) -> String {
        let mut compose = format!(r#""include":[{}]"#, includes.join(","));
        if !excludes.is_empty() {
            compose.push_str(&format!(r#","exclude":[{}]"#, excludes.join(",")));
        }
        format!(r#"{{"resourceType":"ValueSet","id":"{id}","url":"u","compose":{{{compose}}}}}"#)
    }

    /// A mapping set where `surgery`, `cancer` and `leg-cast` have the value sets given.
    fn ranged(surgery: &str, cancer: &str, cast: &str) -> Result<Mappings, MappingError> {
        Mappings::from_files(
            "t",
            &[
                (
                    "model.toml".into(),
                    model_with(&[
                        (CodeSet::Surgery, "surgery"),
                        (CodeSet::Cancer, "cancer"),
                        (CodeSet::LegCast, "leg-cast"),
                    ]),
                ),
                ("valuesets/surgery.json".into(), surgery.into()),
                ("valuesets/cancer.json".into(), cancer.into()),
                ("valuesets/leg-cast.json".into(), cast.into()),
                ("valuesets/empty.json".into(), EMPTY.into()),
            ],
        )
    }

    fn surgery_ranges() -> String {
        value_set(
            "surgery",
            &[
                part(CPT, "27440-27447"),
                part(CPT, "0001F-0015F"),
                part(CPT, "0042T-0045T"),
                part(CPT, r#""concept":[{"code":"59400"}]"#),
            ],
            &[],
        )
    }

    fn cancer_with_excludes() -> String {
        value_set(
            "cancer",
            &[
                part(ICD10CM, "C00-D49"),
                part(ICD10CM, r#""concept":[{"code":"Z99.99"}]"#),
            ],
            &[
                part(ICD10CM, "D37-D44"),
                part(
                    ICD10CM,
                    r#""filter":[{"property":"concept","op":"is-a","value":"C44.91"}]"#,
                ),
                part(
                    ICD10CM,
                    r#""concept":[{"code":"C44.92"},{"code":"Z99.99"}]"#,
                ),
            ],
        )
    }

    fn cast_overlapping() -> String {
        value_set(
            "leg-cast",
            &[
                part(CPT, "27445-27460"),
                part(ICD10CM, r#""concept":[{"code":"D38.1"}]"#),
            ],
            &[],
        )
    }

    fn shipped_like() -> Mappings {
        ranged(
            &surgery_ranges(),
            &cancer_with_excludes(),
            &cast_overlapping(),
        )
        .unwrap()
    }

    fn is(m: &Mappings, system: &str, code: &str, set: CodeSet) -> bool {
        m.classify(system, code).contains(set)
    }

    #[test]
    fn cpt_range_holds_both_edges_and_nothing_outside() {
        let m = shipped_like();
        for code in ["27440", "27443", "27447", " 27447 ", "59400"] {
            assert!(is(&m, CPT, code, CodeSet::Surgery), "{code}");
        }
        for code in [
            "27439", "27448", "2744", "274400", "27440.0", "59401", "", "2744X",
        ] {
            assert!(!is(&m, CPT, code, CodeSet::Surgery), "{code:?}");
        }
        // The same range under another system (or its OID) is the same system; LOINC is not.
        assert!(is(
            &m,
            "urn:oid:2.16.840.1.113883.6.12",
            "27445",
            CodeSet::Surgery
        ));
        assert!(!is(&m, LOINC, "27445", CodeSet::Surgery));
        // Not ASCII: no match, no panic.
        for (system, code) in [
            (CPT, "2744é"),
            (CPT, "274é"),
            (ICD10CM, "D3é"),
            (SNOMED, "é"),
        ] {
            assert!(m.classify(system, code).is_empty(), "{code}");
        }
    }

    #[test]
    fn cpt_alphanumeric_ranges_compare_within_their_kind() {
        let m = shipped_like();
        for code in ["0001F", "0005F", "0015F", "0042T", "0045T"] {
            assert!(is(&m, CPT, code, CodeSet::Surgery), "{code}");
        }
        // Just outside; another letter at an inside number; Category I at an inside number;
        // lower case is not CPT.
        for code in [
            "0000F", "0016F", "0041T", "0046T", "0005T", "0043F", "0005U", "00005", "0005f",
        ] {
            assert!(!is(&m, CPT, code, CodeSet::Surgery), "{code}");
        }
        assert_eq!(cpt_order("0001F").map(|k| k / 100_000), Some(6));
        assert!(cpt_order("99499") < cpt_order("0001F"));
    }

    #[test]
    fn overlapping_ranges_of_two_code_sets_both_answer() {
        let m = shipped_like();
        let both = m.classify(CPT, "27446");
        assert!(both.contains(CodeSet::Surgery) && both.contains(CodeSet::LegCast));
        let one = m.classify(CPT, "27448");
        assert!(!one.contains(CodeSet::Surgery) && one.contains(CodeSet::LegCast));
        assert!(m.classify(CPT, "27444").contains(CodeSet::Surgery));
        assert!(!m.classify(CPT, "27444").contains(CodeSet::LegCast));
        assert!(m.classify(CPT, "27460").contains(CodeSet::LegCast));
        assert!(m.classify(CPT, "27461").is_empty());
        assert_eq!(m.info(CodeSet::Surgery).ranges, 3);
        assert_eq!(m.info(CodeSet::Surgery).codes, 1);
    }

    #[test]
    fn icd_range_covers_the_codes_below_its_ends() {
        let m = shipped_like();
        for code in [
            "C00", "C00.0", "C50.911", "c50911", "D36.9", "D45", "D49.9", "D49",
        ] {
            assert!(is(&m, ICD10CM, code, CodeSet::Cancer), "{code}");
        }
        for code in ["B99.9", "E00", "C0", "Z85.3"] {
            assert!(!is(&m, ICD10CM, code, CodeSet::Cancer), "{code}");
        }
    }

    #[test]
    fn excludes_override_ranges_is_a_and_exact_includes() {
        let m = shipped_like();
        // Range excluded from a range: both edges and below them; just outside stays.
        for code in ["D37", "D37.0", "D40.10", "D44", "D44.9", "d449"] {
            assert!(!is(&m, ICD10CM, code, CodeSet::Cancer), "{code}");
        }
        assert!(is(&m, ICD10CM, "D36.9", CodeSet::Cancer));
        assert!(is(&m, ICD10CM, "D45", CodeSet::Cancer));
        // An is-a exclude and an exact exclude; the siblings stay.
        for code in ["C44.91", "C4491", "C44.92", " C44.92 "] {
            assert!(!is(&m, ICD10CM, code, CodeSet::Cancer), "{code}");
        }
        for code in ["C44.90", "C44.99", "C44.01"] {
            assert!(is(&m, ICD10CM, code, CodeSet::Cancer), "{code}");
        }
        // Exact include, exact exclude: excluded.
        assert!(!is(&m, ICD10CM, "Z99.99", CodeSet::Cancer));
        // An exclude takes a code out of its own code set only.
        let d38 = m.classify(ICD10CM, "D38.1");
        assert!(!d38.contains(CodeSet::Cancer) && d38.contains(CodeSet::LegCast));
        assert_eq!(m.info(CodeSet::Cancer).excludes, 4);
    }

    /// (surgery value set with one broken entry, the entry named, words of the message)
    #[test]
    fn malformed_ranges_and_excludes_are_refused_naming_file_and_entry() {
        let inc = |p: String| value_set("surgery", &[p], &[]);
        let f0 = "compose.include[0].filter[0]";
        let v0 = "compose.include[0].filter[0].value";
        let cases: Vec<(String, &str, &str)> = vec![
            (inc(part(CPT, "27440")), v0, "is not a range"),
            (inc(part(CPT, "27440-")), v0, "is not a range"),
            (inc(part(CPT, "-27447")), v0, "is not a range"),
            (inc(part(CPT, "27440-27445-27447")), v0, "is not a range"),
            (
                inc(part(CPT, "2744-27447")),
                v0,
                "\"2744\" is not a CPT code",
            ),
            (inc(part(CPT, "27440-274470")), v0, "is not a CPT code"),
            (inc(part(CPT, "0001f-0015f")), v0, "is not a CPT code"),
            (
                inc(part(CPT, "0001F-0015T")),
                v0,
                "different kinds of CPT code",
            ),
            (
                inc(part(CPT, "99499-0001F")),
                v0,
                "different kinds of CPT code",
            ),
            (
                inc(part(CPT, "27447-27440")),
                v0,
                "\"27447\" comes after \"27440\"",
            ),
            (inc(part(ICD10CM, "D37-D44.9")), v0, "different lengths"),
            (inc(part(ICD10CM, "D4-D44")), v0, "is not an ICD-10-CM code"),
            (inc(part(ICD10CM, "D44-D37")), v0, "comes after"),
            (
                inc(part(SNOMED, "100-200")),
                f0,
                "only supported for CPT and ICD-10-CM",
            ),
            (
                inc(part(
                    CPT,
                    r#""filter":[{"property":"code-range","op":"is-a","value":"1-2"}]"#,
                )),
                f0,
                "not code-range is-a",
            ),
            (
                inc(part(
                    ICD10CM,
                    r#""filter":[{"property":"code-range","op":"=","value":"D37-D44"},{"property":"concept","op":"is-a","value":"D3"}]"#,
                )),
                f0,
                "its include's only filter",
            ),
            (
                value_set(
                    "surgery",
                    &[part(CPT, "27440-27447")],
                    &[r#"{"system":"x","concept":[{"code":"1"}]}"#.into()],
                ),
                "compose.exclude[0].extension",
                "needs a source extension",
            ),
            (
                value_set(
                    "surgery",
                    &[part(CPT, "27440-27447")],
                    &[part(CPT, "27447-27440")],
                ),
                "compose.exclude[0].filter[0].value",
                "comes after",
            ),
            (
                value_set("surgery", &[part(CPT, "27440-27447")], &[])
                    .replace(r#""include":"#, r#""exclude":{},"include":"#),
                "compose.exclude",
                "non-empty array",
            ),
            (
                value_set("surgery", &[part(CPT, "27440-27447")], &[])
                    .replace(r#""include":"#, r#""exclude":[],"include":"#),
                "compose.exclude",
                "must not be empty",
            ),
            (
                // FHIR: compose.include is required; an exclude alone selects nothing.
                r#"{"resourceType":"ValueSet","id":"surgery","url":"u","compose":{"exclude":[]}}"#
                    .into(),
                "compose.include",
                "must be a non-empty array",
            ),
        ];
        for (surgery, entry, words) in cases {
            let e =
                ranged(&surgery, &cancer_with_excludes(), &cast_overlapping()).expect_err(&surgery);
            assert_eq!(e.file, "t/valuesets/surgery.json", "{surgery}: {e}");
            assert_eq!(e.entry, entry, "{surgery}: {e}");
            assert!(e.problem.contains(words), "{surgery}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("t/valuesets/surgery.json: {entry}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn range_table_segments_are_disjoint_and_sorted() {
        let mut t = RangeTable {
            raw: vec![
                (10, 20, 1),
                (15, 30, 2),
                (15, 30, 4),
                (40, 40, 1),
                (21, 25, 1),
            ],
            ..RangeTable::default()
        };
        t.compile();
        let got: Vec<(u64, u64, u64)> = t.segments.iter().map(|s| (s.lo, s.hi, s.bits)).collect();
        assert_eq!(
            got,
            vec![(10, 14, 1), (15, 25, 7), (26, 30, 6), (40, 40, 1)]
        );
    }

    // ---- the mapping set's id and version ----

    #[test]
    fn shipped_set_loads_with_its_id_and_version() {
        let m = Mappings::embedded().expect("shipped mappings");
        assert_eq!(
            (m.id.as_str(), m.version.as_str()),
            ("dvt-cds-default", "2.0.0")
        );
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let on_disk = Mappings::load_dir(&dir).expect("mappings/ on disk");
        // `--version`'s quick read of model.toml says what the full load says.
        assert_eq!(embedded_identity(), Some((m.id.clone(), m.version.clone())));
        assert_eq!((on_disk.id, on_disk.version), (m.id, m.version));
        let report = check_command(None).unwrap();
        assert!(
            report.starts_with("mappings OK: dvt-cds-default version 2.0.0 (embedded)"),
            "{report}"
        );
        assert!(report.contains("ranges"), "{report}");
    }

    /// The shipped code sets against `dvt-model.md` version 2 §2 (and the decisions of
    /// mappings/README.md): (system, code, sets it is in, sets it is not in).
    #[test]
    fn shipped_code_sets_follow_spec_v2() {
        use CodeSet::*;
        type Case = (
            &'static str,
            &'static str,
            &'static [CodeSet],
            &'static [CodeSet],
        );
        let m = Mappings::embedded().expect("shipped mappings");
        let cases: &[Case] = &[
            // §2 active-cancer treatment: CPT 77261-77799 and 96401-96549, both edges.
            (CPT, "77260", &[], &[CancerTreatment]),
            (CPT, "77261", &[CancerTreatment], &[]),
            (CPT, "77799", &[CancerTreatment], &[]),
            (CPT, "77800", &[], &[CancerTreatment]),
            (CPT, "96400", &[], &[CancerTreatment]),
            (CPT, "96401", &[CancerTreatment], &[]),
            (CPT, "96549", &[CancerTreatment], &[]),
            (CPT, "96550", &[], &[CancerTreatment]),
            (ICD10CM, "Z51.0", &[CancerTreatment], &[]),
            (ICD10CM, "Z51.11", &[CancerTreatment], &[]),
            (ICD10CM, "Z51.12", &[CancerTreatment], &[]),
            (SNOMED, "367336001", &[CancerTreatment], &[]),
            (SNOMED, "108290001", &[CancerTreatment], &[]),
            (SNOMED, "703423002", &[CancerTreatment], &[]),
            (ICD10CM, "Z51.5", &[PalliativeCare], &[CancerTreatment]),
            (SNOMED, "103735009", &[PalliativeCare], &[]),
            (SNOMED, "385763009", &[PalliativeCare], &[]),
            // §2 active-cancer: never BCC / SCC of the skin (C44.x1-, C44.x2-), never
            // D37-D44, D48, D49, never Z85; the other C44 codes and D45-D47 stay.
            (ICD10CM, "C44.91", &[], &[Cancer]),
            (ICD10CM, "C44.92", &[], &[Cancer]),
            (ICD10CM, "C44.01", &[], &[Cancer]),
            (ICD10CM, "C44.311", &[], &[Cancer]),
            (ICD10CM, "C44.321", &[], &[Cancer]),
            (ICD10CM, "C44.1121", &[], &[Cancer]),
            (ICD10CM, "C44.99", &[Cancer], &[]),
            (ICD10CM, "C44.90", &[Cancer], &[]),
            (ICD10CM, "C44.1391", &[Cancer], &[]),
            (ICD10CM, "C4A.9", &[Cancer], &[]),
            (ICD10CM, "D44.9", &[], &[Cancer]),
            (ICD10CM, "D48.9", &[], &[Cancer]),
            (ICD10CM, "D49.9", &[], &[Cancer]),
            (ICD10CM, "Z85.3", &[], &[Cancer]),
            (
                ICD10CM,
                "D45",
                &[Cancer, HaematologicalCancer],
                &[MetastaticCancer],
            ),
            (ICD10CM, "D47.1", &[Cancer, HaematologicalCancer], &[]),
            (ICD10CM, "C91.00", &[Cancer, HaematologicalCancer], &[]),
            (
                ICD10CM,
                "C78.00",
                &[Cancer, MetastaticCancer],
                &[HaematologicalCancer],
            ),
            (ICD10CM, "C79.9", &[Cancer, MetastaticCancer], &[]),
            (ICD10CM, "C7B.00", &[Cancer, MetastaticCancer], &[]),
            (
                ICD10CM,
                "C80.1",
                &[Cancer],
                &[MetastaticCancer, HaematologicalCancer],
            ),
            (
                ICD10CM,
                "C50.911",
                &[Cancer],
                &[MetastaticCancer, HaematologicalCancer],
            ),
            (SNOMED, "254701007", &[], &[Cancer]), // basal cell carcinoma of skin
            (SNOMED, "254651007", &[], &[Cancer]), // squamous cell carcinoma of skin
            (SNOMED, "402537005", &[Cancer, MetastaticCancer], &[]), // metastatic BCC
            (SNOMED, "118616009", &[], &[Cancer]), // neoplastic disease, uncertain behaviour
            (SNOMED, "109958007", &[Cancer, HaematologicalCancer], &[]),
            (SNOMED, "94222008", &[Cancer, MetastaticCancer], &[]),
            (SNOMED, "109989006", &[Cancer, HaematologicalCancer], &[]),
            (
                SNOMED,
                "254837009",
                &[Cancer],
                &[MetastaticCancer, HaematologicalCancer],
            ),
            // §2 cough: R05 itself, R05.1, R05.9; never R05.2 / R05.3 (nor R05.4, R05.8).
            (ICD10CM, "R05", &[Cough], &[]),
            (ICD10CM, "R05.1", &[Cough], &[]),
            (ICD10CM, "R05.9", &[Cough], &[]),
            (ICD10CM, "R05.2", &[], &[Cough]),
            (ICD10CM, "R05.3", &[], &[Cough]),
            (ICD10CM, "R05.4", &[], &[Cough]),
            (SNOMED, "60845006", &[Dyspnoea], &[]),
            (ICD10CM, "R07.81", &[ChestPain], &[]),
            (ICD10CM, "R09.02", &[Hypoxaemia], &[]),
            // §2 previous-dvt / previous-vte / current-dvt.
            (ICD10CM, "I82.401", &[Dvt], &[DvtChronic, Pe]),
            (ICD10CM, "I82.4Z2", &[Dvt], &[DvtChronic]),
            (ICD10CM, "I82.501", &[Dvt, DvtChronic], &[Pe]),
            (ICD10CM, "I80.11", &[Dvt], &[]),
            (ICD10CM, "I80.291", &[Dvt], &[]),
            (ICD10CM, "O22.31", &[Dvt], &[]),
            (ICD10CM, "O87.1", &[Dvt, Postpartum], &[]),
            (ICD10CM, "I80.3", &[], &[Dvt, Pe]),
            (ICD10CM, "I80.9", &[], &[Dvt, Pe]),
            (ICD10CM, "I82.220", &[], &[Dvt, Pe]),
            (ICD10CM, "I82.290", &[], &[Dvt, Pe]),
            (ICD10CM, "I82.890", &[], &[Dvt, Pe]),
            (ICD10CM, "I82.90", &[], &[Dvt, Pe]),
            (ICD10CM, "I26.99", &[Pe], &[Dvt]),
            (ICD10CM, "O88.211", &[Pe], &[]),
            (SNOMED, "128053003", &[Dvt], &[Pe]),
            (SNOMED, "195427008", &[Dvt], &[]), // thrombophlebitis of external iliac vein
            (SNOMED, "132281000119108", &[Dvt], &[]), // Synthea's DVT
            (SNOMED, "195437003", &[], &[Dvt, Pe]), // vena cava
            (SNOMED, "312588002", &[], &[Dvt]), // phlebitis of lower limb vein
            (SNOMED, "59282003", &[Pe], &[Dvt]),
            (SNOMED, "706870000", &[Pe], &[]), // Synthea's PE
            (ICD10CM, "Z86.718", &[DvtHistory], &[PeHistory]),
            (ICD10CM, "Z86.711", &[PeHistory], &[DvtHistory]),
            (SNOMED, "161508001", &[DvtHistory], &[]),
            (SNOMED, "161512007", &[PeHistory], &[]),
            // §2 leg-swelling and §1 generic finding + body site.
            (ICD10CM, "R22.41", &[LegSwelling], &[]),
            (SNOMED, "449614009", &[LegSwelling], &[]),
            (SNOMED, "449615005", &[LegSwelling], &[]),
            (ICD10CM, "R60.0", &[LegSwellingUnsited], &[LegSwelling]),
            (SNOMED, "80068009", &[LegSwellingUnsited], &[LegSwelling]),
            (ICD10CM, "M79.89", &[LegSiteOnlySwelling], &[LegSwelling]),
            (SNOMED, "22253000", &[GenericPain], &[LegPain]),
            (SNOMED, "65124004", &[GenericSwelling], &[LegSwelling]),
            (SNOMED, "267038008", &[GenericSwelling], &[]),
            (SNOMED, "32696007", &[LegSite], &[UpperLimbSite]),
            (SNOMED, "53840002", &[LegSite], &[]),
            (SNOMED, "53120007", &[UpperLimbSite], &[LegSite]),
            (LOINC, "75325-1", &[SymptomQuestion], &[]),
            (LOINC, "8661-1", &[SymptomQuestion], &[]),
            // §2 pregnancy: hCG; ended by a loss (O00-O06, O08; not O07, not O02.81).
            (LOINC, "2106-3", &[Hcg], &[]),
            (LOINC, "2118-8", &[Hcg], &[]),
            (ICD10CM, "O00.101", &[PregnancyLoss], &[]),
            (ICD10CM, "O02.0", &[PregnancyLoss], &[]),
            (ICD10CM, "O03.9", &[PregnancyLoss], &[]),
            (ICD10CM, "O06.9", &[PregnancyLoss], &[]),
            (ICD10CM, "O08.0", &[PregnancyLoss], &[]),
            (ICD10CM, "O02.81", &[], &[PregnancyLoss]),
            (ICD10CM, "O07.4", &[], &[PregnancyLoss]),
            (SNOMED, "19169002", &[PregnancyLoss], &[]),
            // §2 postpartum: births as Synthea and CPT record them; not 59412 / 59425 /
            // 59426 / 59430.
            (SNOMED, "386216000", &[Delivery], &[]),
            (SNOMED, "85548006", &[Delivery], &[]),
            (CPT, "59400", &[Delivery], &[]),
            (CPT, "59622", &[Delivery, Surgery], &[]),
            (CPT, "59412", &[], &[Delivery]),
            (CPT, "59425", &[], &[Delivery]),
            (CPT, "59426", &[], &[Delivery]),
            (CPT, "59430", &[], &[Delivery]),
            (ICD10CM, "O80", &[Postpartum], &[]),
            (ICD10CM, "Z37.0", &[Postpartum], &[]),
            (ICD10CM, "Z39.2", &[Postpartum], &[]),
            // §2 recent-surgery: CPT major surgery; endoscopy, injections, taps, pacemakers
            // are not.
            (CPT, "27130", &[Surgery], &[]),
            (CPT, "27447", &[Surgery], &[]),
            (CPT, "27236", &[Surgery], &[]),
            (CPT, "27506", &[Surgery], &[]),
            (CPT, "27759", &[Surgery], &[]),
            (CPT, "22612", &[Surgery], &[]),
            (CPT, "63047", &[Surgery], &[]),
            (CPT, "44140", &[Surgery], &[]),
            (CPT, "47562", &[Surgery], &[]),
            (CPT, "58150", &[Surgery], &[]),
            (CPT, "32480", &[Surgery], &[]),
            (CPT, "33533", &[Surgery], &[]),
            (CPT, "61510", &[Surgery], &[]),
            (CPT, "43235", &[], &[Surgery]),
            (CPT, "45378", &[], &[Surgery]),
            (CPT, "62323", &[], &[Surgery]),
            (CPT, "49083", &[], &[Surgery]),
            (CPT, "32555", &[], &[Surgery]),
            (CPT, "33208", &[], &[Surgery]),
            (SNOMED, "232717009", &[Surgery], &[]),
            // §1 medications: RxNorm at IN and clinical-drug level; Synthea's codes.
            (RXNORM, "1364430", &[Anticoagulant], &[]),
            (RXNORM, "11289", &[Anticoagulant], &[]),
            (RXNORM, "321208", &[Anticoagulant], &[]), // fondaparinux (IN)
            (RXNORM, "1364447", &[Anticoagulant], &[]), // apixaban 5 mg [Eliquis] (SBD)
            (RXNORM, "1546356", &[], &[Anticoagulant]), // dabigatran IN: one source only
            (RXNORM, "855332", &[Anticoagulant], &[]),
            (RXNORM, "854235", &[], &[Anticoagulant]), // enoxaparin 40 mg: prophylaxis
            (RXNORM, "748856", &[Estrogen], &[]),
            (RXNORM, "198761", &[], &[Estrogen]), // nonoxynol-9: not hormonal
            (RXNORM, "198240", &[Antineoplastic], &[]),
            (RXNORM, "3002", &[Antineoplastic], &[]),
            (RXNORM, "1803932", &[], &[Antineoplastic]), // leucovorin
        ];
        for &(system, code, yes, no) in cases {
            let sets = m.classify(system, code);
            for &set in yes {
                assert!(
                    sets.contains(set),
                    "{system}|{code} should be in {}",
                    set.key()
                );
            }
            for &set in no {
                assert!(
                    !sets.contains(set),
                    "{system}|{code} must not be in {}",
                    set.key()
                );
            }
        }
    }

    /// §2: every C44 code of the shipped cancer value set is excluded exactly when the
    /// character after its site digit is 1 or 2 (basal / squamous cell), e.g. C44.1121
    /// out, C44.1391 (sebaceous) and C44.99 in.
    #[test]
    fn every_shipped_c44_code_follows_the_basal_squamous_rule() {
        let m = Mappings::embedded().expect("shipped mappings");
        let text = embedded::FILES
            .iter()
            .find(|(p, _)| *p == "valuesets/cancer.json")
            .map(|(_, t)| *t)
            .expect("cancer.json shipped");
        let vs: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut checked = 0;
        for inc in vs["compose"]["include"].as_array().unwrap() {
            for c in inc["concept"].as_array().into_iter().flatten() {
                let code = c["code"].as_str().unwrap();
                let Some(rest) = code.strip_prefix("C44.") else {
                    continue;
                };
                let kind = rest.as_bytes().get(1).copied();
                let excluded = matches!(kind, Some(b'1' | b'2'));
                assert_eq!(
                    m.classify(ICD10CM, code).contains(CodeSet::Cancer),
                    !excluded,
                    "{code}"
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} C44 codes seen");
    }

    #[test]
    fn medication_names_match_whole_words_in_any_case() {
        let m = Mappings::embedded().expect("shipped mappings");
        let anticoagulant = |t: &str| m.medication_name_sets(t).contains(CodeSet::Anticoagulant);
        for text in [
            "Eliquis 5 mg tablet",
            "APIXABAN",
            "warfarin sodium 5 MG",
            "(Xarelto)",
            // A part-word occurrence does not hide a whole-word one after it.
            "Xareltox, then Xarelto",
        ] {
            assert!(anticoagulant(text), "{text}");
        }
        for text in ["Xareltox", "preapixaban", "", "aspirin 81 mg"] {
            assert!(!anticoagulant(text), "{text}");
        }
        assert!(
            m.medication_name_sets("tamoxifen 20 mg")
                .contains(CodeSet::Antineoplastic)
        );
        assert!(
            m.medication_name_sets("Ethinyl Estradiol / Levonorgestrel")
                .contains(CodeSet::Estrogen)
        );
        // One text, the names of two sets: both found in the one pass.
        let both = m.medication_name_sets("tamoxifen; warfarin");
        assert!(both.contains(CodeSet::Antineoplastic) && both.contains(CodeSet::Anticoagulant));
        let mut f = files(LEG_PAIN);
        f[0].1 = f[0].1.replace(
            "[medication-names]\n",
            "[medication-names]\nno-such-set = [\"x\"]\n",
        );
        let e = Mappings::from_files("t", &f).unwrap_err();
        assert_eq!(e.entry, "[medication-names] no-such-set");
    }

    #[test]
    fn version_2_model_values_are_read() {
        let m = Mappings::embedded().expect("shipped mappings");
        assert_eq!(m.model.windows.pregnancy_evidence, 294);
        assert_eq!(m.model.windows.cancer_activity, 183);
        let r = &m.model.record;
        assert!(r.absent_values.iter().any(|c| c.matches(LOINC, "LA32-8")));
        assert!(
            r.absent_values
                .iter()
                .any(|c| c.matches(SNOMED, "410594000"))
        );
        assert_eq!(
            r.absent_words,
            ["no", "none", "negative", "absent", "denies"]
        );
        assert!(
            r.positive_values
                .iter()
                .any(|c| c.matches(SNOMED, "10828004"))
        );
        assert_eq!(m.model.source.article_reviewer, "Tina M. St. John, MD");
    }

    #[test]
    fn bad_or_missing_set_id_is_refused_naming_the_key() {
        let mut f = files(LEG_PAIN);
        f[0].1 = f[0]
            .1
            .replace("id = \"dvt-cds-default\"", "id = \"dvt cds\"");
        let e = Mappings::from_files("t", &f).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.entry.as_str()),
            ("t/model.toml", "[model] id")
        );
        let mut f = files(LEG_PAIN);
        f[0].1 = f[0].1.replace("version = \"2.0.0\"", "version = \"\"");
        let e = Mappings::from_files("t", &f).unwrap_err();
        assert_eq!(e.entry, "[model] version");
        let mut f = files(LEG_PAIN);
        f[0].1 = f[0].1.replace("id = \"dvt-cds-default\"\n", "");
        let e = Mappings::from_files("t", &f).unwrap_err();
        assert!(e.to_string().contains("missing field `id`"), "{e}");
    }
}
