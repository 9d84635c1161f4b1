//! rdeploy: an agentless, push-based deployment executor.
//!
//! ```text
//! cli ─▶ inventory ─▶ playbook (parse, validate) ─▶ render (minijinja) ─▶ plan (batches)
//!         └─────────── vars (one precedence list) ──┘                         │
//!                                                                             ▼
//! report ◀── events ◀── exec (JoinSet + Semaphore(forks)) ─▶ transport (ssh | local)
//!                         │   per host, per task: render → when → check → [check mode stops]
//!                         │                       → journal intent → backup → apply → verify
//!                         ├─▶ probe    (between batches: http | tcp | command | prometheus)
//!                         └─▶ rollback (on-host manifests read backwards: restore backups)
//! ```
//!
//! The checks of the next tasks ride with a command the host runs anyway (`transport::reads`):
//! a check's reads are often answered without a round trip of their own.
//!
//! Everything before `exec` is pure and touches no host: `rdeploy plan` and `--syntax-check`
//! stop there. `backup` owns the on-host backups and the controller journal, `vault` Ansible
//! Vault and the masking of secrets. Each module's own header says what it owns.

pub mod backup;
pub mod cli;
pub mod diag;
pub mod exec;
pub mod host;
pub mod inventory;
pub mod limits;
pub mod modules;
pub mod plan;
pub mod playbook;
pub mod probe;
pub mod report;
pub mod resolve;
pub mod rollback;
pub mod template;
pub mod transport;
pub mod validate;
pub mod vars;
pub mod vault;
pub mod window;
pub mod yaml;
