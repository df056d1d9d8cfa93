//! The clinical knowledge as data (`mappings/`): FHIR R4 ValueSets (one per code set) and
//! `model.toml` (windows, thresholds, order codes, texts). Parsed and checked once; a bad
//! file is refused with the file, the entry and what is wrong. Pure: the only I/O is
//! [`Mappings::load_dir`] reading the files it is pointed at.
//!
//! Queries are fast: every (system, code) maps to a bit set of the code sets it belongs
//! to, so one hash lookup answers all concepts at once (ICD-10-CM `is-a` is a prefix
//! lookup on the normalised code: no dot, no surrounding whitespace, upper case).

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
    Vte => "vte",
    VteHistory => "vte-history",
    AcuteDvt => "acute-dvt",
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
}

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

#[derive(Debug, Default)]
struct SystemIndex {
    is_icd10cm: bool,
    exact: FastMap<Box<str>, u64>,
    /// ICD-10-CM `is-a` roots, normalised.
    prefixes: FastMap<Box<str>, u64>,
    /// Bit n set: some root is n characters long (only those lengths are looked up).
    prefix_lens: u32,
}

/// Per code set: where it came from and how many codes it holds (for `mappings check`).
#[derive(Debug, Clone, Default)]
pub struct CodeSetInfo {
    pub value_sets: Vec<String>,
    pub codes: usize,
    pub is_a_roots: usize,
}

/// Loaded and compiled mappings. Immutable and `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct Mappings {
    pub model: Model,
    systems: Vec<SystemIndex>,
    system_ids: FastMap<Box<str>, usize>,
    info: Vec<CodeSetInfo>,
    laterality: FastMap<Box<str>, Side>,
    body_sites: FastMap<Box<str>, Side>,
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

        // Parse every value set file; the file name must match its `id`.
        let mut value_sets: HashMap<String, (String, ParsedValueSet)> = HashMap::new();
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

        let mut m = Mappings {
            model,
            systems: Vec::new(),
            system_ids: FastMap::default(),
            info: vec![CodeSetInfo::default(); CodeSet::ALL.len()],
            laterality: FastMap::default(),
            body_sites: FastMap::default(),
        };
        let mut used: HashSet<&str> = HashSet::new();
        for &set in CodeSet::ALL {
            let ids =
                m.model.codesets.get(set.key()).ok_or_else(|| {
                    err(&model_file, format!("[codesets] {}", set.key()), "missing")
                })?;
            if ids.is_empty() {
                return Err(err(
                    &model_file,
                    format!("[codesets] {}", set.key()),
                    "lists no value set",
                ));
            }
            for id in ids.clone() {
                let (file, vs) = value_sets.get(&id).ok_or_else(|| {
                    err(
                        &model_file,
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
                m.add_value_set(set, file, vs)?;
                m.info[set as usize].value_sets.push(id.clone());
            }
        }
        for key in m.model.codesets.keys() {
            if CodeSet::from_key(key).is_none() {
                return Err(err(
                    &model_file,
                    format!("[codesets] {key}"),
                    "unknown code set (the model does not use it)",
                ));
            }
        }
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
        m.build_laterality(&model_file)?;
        Ok(m)
    }

    fn system_index(&mut self, system: &str) -> usize {
        if let Some(&i) = self.system_ids.get(system) {
            return i;
        }
        let i = self.systems.len();
        self.systems.push(SystemIndex {
            is_icd10cm: system == ICD10CM,
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
            let si = self.system_index(&inc.system);
            let is_icd = self.systems[si].is_icd10cm;
            for (entry, code) in &inc.codes {
                let key = if is_icd {
                    normalise_icd_string(code).ok_or_else(|| {
                        err(
                            file,
                            entry.clone(),
                            format!("\"{code}\" is not an ICD-10-CM code"),
                        )
                    })?
                } else {
                    code.trim().to_string()
                };
                *self.systems[si].exact.entry(key.into()).or_default() |= set.bit();
                self.info[set as usize].codes += 1;
            }
            for (entry, root) in &inc.is_a {
                let key = normalise_icd_string(root).ok_or_else(|| {
                    err(
                        file,
                        entry.clone(),
                        format!("\"{root}\" is not an ICD-10-CM code"),
                    )
                })?;
                self.systems[si].prefix_lens |= 1 << key.len().min(31);
                *self.systems[si].prefixes.entry(key.into()).or_default() |= set.bit();
                self.info[set as usize].is_a_roots += 1;
            }
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
    /// root.
    pub fn classify(&self, system: &str, code: &str) -> CodeSets {
        let Some(&si) = self.system_ids.get(trim(system)) else {
            return CodeSets::default();
        };
        let idx = &self.systems[si];
        if !idx.is_icd10cm {
            return CodeSets(idx.exact.get(trim(code)).copied().unwrap_or(0));
        }
        let mut buf = [0u8; 16];
        let Some(n) = normalise_icd(code, &mut buf) else {
            return CodeSets::default();
        };
        let Ok(norm) = std::str::from_utf8(&buf[..n]) else {
            return CodeSets::default();
        };
        let mut bits = idx.exact.get(norm).copied().unwrap_or(0);
        if !idx.prefixes.is_empty() {
            for len in (3..=n).filter(|l| idx.prefix_lens & (1 << l) != 0) {
                if let Some(b) = idx.prefixes.get(&norm[..len]) {
                    bits |= b;
                }
            }
        }
        CodeSets(bits)
    }

    /// The side an ICD-10-CM code names (`dvt-model.md` §2 laterality), if any.
    pub fn icd_side(&self, system: &str, code: &str) -> Option<Side> {
        if self
            .system_ids
            .get(trim(system))
            .map(|&i| self.systems[i].is_icd10cm)
            != Some(true)
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

    /// Is this system ICD-10-CM (or one of its aliases)?
    pub fn is_icd10cm(&self, system: &str) -> bool {
        self.system_ids
            .get(trim(system))
            .map(|&i| self.systems[i].is_icd10cm)
            == Some(true)
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
        "mappings OK: {} {} ({})\n",
        m.model.model.name,
        m.model.model.version,
        dir.map_or("embedded".to_string(), |d| d.display().to_string())
    );
    for &set in CodeSet::ALL {
        let i = m.info(set);
        out.push_str(&format!(
            "{:<34} {:>6} codes {:>3} is-a roots  from {}\n",
            set.key(),
            i.codes,
            i.is_a_roots,
            i.value_sets.join(", ")
        ));
    }
    Ok(out)
}

// ---- ValueSet parsing (the subset mappings-format.md allows) ----

#[derive(Debug)]
struct ParsedInclude {
    system: String,
    /// (entry path, code)
    codes: Vec<(String, String)>,
    is_a: Vec<(String, String)>,
}

#[derive(Debug)]
struct ParsedValueSet {
    id: String,
    includes: Vec<ParsedInclude>,
}

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
    let mut includes = Vec::new();
    let Some(compose) = obj.get("compose") else {
        return Ok(ParsedValueSet { id, includes });
    };
    let compose = compose
        .as_object()
        .ok_or_else(|| err(file, "compose", "must be an object"))?;
    for key in compose.keys() {
        if key != "include" {
            return Err(err(
                file,
                format!("compose.{key}"),
                "not supported (only compose.include: no exclude, no other elements)",
            ));
        }
    }
    let incs = compose
        .get("include")
        .and_then(|i| i.as_array())
        .ok_or_else(|| err(file, "compose.include", "must be a non-empty array"))?;
    if incs.is_empty() {
        return Err(err(file, "compose.include", "must not be empty"));
    }
    for (i, inc) in incs.iter().enumerate() {
        let at = format!("compose.include[{i}]");
        let inc = inc
            .as_object()
            .ok_or_else(|| err(file, &at, "must be an object"))?;
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
        let system = non_empty_str(file, &format!("{at}.system"), inc.get("system"))?
            .trim()
            .to_string();
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
        let mut pi = ParsedInclude {
            system: system.clone(),
            codes: Vec::new(),
            is_a: Vec::new(),
        };
        match (inc.get("concept"), inc.get("filter")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    file,
                    &at,
                    "has both concept and filter (FHIR allows one)",
                ));
            }
            (None, None) => return Err(err(file, &at, "has neither concept nor filter")),
            (Some(concepts), None) => {
                let arr = concepts
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| {
                        err(file, format!("{at}.concept"), "must be a non-empty array")
                    })?;
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
                    pi.codes.push((cat, code.to_string()));
                }
            }
            (None, Some(filters)) => {
                let arr = filters
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| {
                        err(file, format!("{at}.filter"), "must be a non-empty array")
                    })?;
                for (j, f) in arr.iter().enumerate() {
                    let fat = format!("{at}.filter[{j}]");
                    let prop = non_empty_str(file, &format!("{fat}.property"), f.get("property"))?;
                    let op = non_empty_str(file, &format!("{fat}.op"), f.get("op"))?;
                    let value = non_empty_str(file, &format!("{fat}.value"), f.get("value"))?;
                    if prop != "concept" || op != "is-a" {
                        return Err(err(
                            file,
                            &fat,
                            format!(
                                "only property \"concept\" with op \"is-a\" is supported, not {prop} {op}"
                            ),
                        ));
                    }
                    if system != ICD10CM {
                        return Err(err(
                            file,
                            &fat,
                            "is-a filters are only supported for ICD-10-CM: list the codes explicitly",
                        ));
                    }
                    pi.is_a.push((fat, value.to_string()));
                }
            }
        }
        includes.push(pi);
    }
    Ok(ParsedValueSet { id, includes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> String {
        let mut s = include_str!("../../mappings/model.toml").to_string();
        // Point every code set at one tiny value set for these unit tests.
        let start = s.find("[codesets]").unwrap();
        let end = s.find("# Windows").unwrap();
        let mut sets = String::from("[codesets]\n");
        for c in CodeSet::ALL {
            let vs = if *c == CodeSet::LegPain {
                "leg-pain"
            } else {
                "empty"
            };
            sets.push_str(&format!("{} = [\"{vs}\"]\n", c.key()));
        }
        s.replace_range(start..end, &sets);
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
}
