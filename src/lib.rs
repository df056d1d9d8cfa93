//! dvt-cds: a CDS Hooks 2.0 service that recognises calf pain or leg swelling in a
//! patient's FHIR R4 record, weighs the risk factors for deep vein thrombosis and the
//! warning signs of pulmonary embolism, and answers with one explainable card.
//!
//! The specification every `dvt-model.md` §N comment cites is `docs/clinical/dvt-model.md`
//! (with `docs/clinical/codes.tsv`: copies of `../shared/clinical/`, see `docs/README.md`).
//!
//! # Layout
//!
//! Pure modules (no I/O, no async, no axum / reqwest / tokio):
//! - [`cds_hooks`]: wire types of CDS Hooks 2.0: hooks, the validated hook request
//!   (read from the body's bytes straight into typed parts, its prefetch and draft
//!   orders as `record::resource` types), discovery entries, cards.
//! - [`mappings`]: the clinical knowledge as data (`mappings/`: FHIR ValueSets and
//!   `model.toml`), compiled into the binary, parsed and checked once at startup.
//! - [`record`]: FHIR R4 resources typed (`record::resource`, parsed leniently from JSON)
//!   and read into the facts the model needs: codes, dates, statuses, values. A
//!   malformed entry is skipped and counted.
//! - [`assessment`]: `dvt-model.md` §1–§5 and §7, one file per clinical noun: `concept`
//!   (the §2 names), `concepts` (§2 from the record), `wells` (§3), `wells_pe` (§4 rule
//!   1), `left` (rule 4), `category` (the §4 rules), `d_dimer` (§5), `suggestions` (§4
//!   modifiers), `drafts` (§7 order hooks), `assess` (the sequence).
//! - [`card`]: `dvt-model.md` §6: the card rendered from an assessment.
//! - [`json_cost`]: an upper bound of what a JSON text costs once parsed as a
//!   `serde_json::Value` tree, read from its bytes before parsing (the body budget counts
//!   it for feedback bodies; hook bodies and FHIR pages are parsed into typed resources
//!   and counted by `record::resource::allowance_for`).
//!
//! I/O at the edge:
//! - [`fhir`]: prefetch templates, prefetch resolution, live FHIR queries (reqwest, each
//!   page parsed from its bytes into `record::resource` types), and which FHIR servers
//!   and addresses they may reach (`fhir::egress`, pure).
//! - [`pipeline`]: one hook call from its JSON body to its response (validate, gather,
//!   assess, render); the service and `dvt-cds evaluate` both run it, and `audit` its
//!   last step ([`pipeline::respond_to`]: assessment -> card -> response).
//! - [`evaluate`]: `dvt-cds evaluate`, offline: a request through [`pipeline`], or a
//!   Bundle straight to the assessment (reads only the files it is given).
//! - [`store`]: shared state behind one trait: feedback, the card log and, on
//!   PostgreSQL, the token replay ledger (SQLite file by default, PostgreSQL for
//!   replicas); `store::report` (pure) sums the card log and feedback for `report`.
//! - [`http`]: the axum router, authentication (JWT), CORS, errors as
//!   OperationOutcome, metrics (`process_*` from `/proc` too), request ids, each call's
//!   server span.
//! - [`audit`]: `dvt-cds audit`, the population report before go-live: reads a
//!   directory of Bundles or Bulk Data NDJSON, runs each patient through
//!   [`pipeline::respond_to`] on worker threads, counts the cards.
//! - [`cli`]: the command line (`serve`, `healthcheck`, `evaluate`, `audit`, `report`,
//!   `mappings check`, `feedback export`).
//! - [`telemetry`]: the log subscriber and, with an OTLP endpoint, OpenTelemetry traces
//!   (no PHI, no secrets in either).

pub mod assessment;
pub mod audit;
pub mod card;
pub mod cds_hooks;
pub mod cli;
pub mod evaluate;
pub mod fhir;
pub mod http;
pub mod json_cost;
pub mod mappings;
pub mod pipeline;
pub mod record;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod test_support;
