//! The HTTPS server. The HTTP contract (paths, answers, error codes) is
//! `shared::api`, specified in `docs/spec/http-api.md`; here each concern
//! has its file:
//!
//! | file | what |
//! |---|---|
//! | `listener.rs` | accepting connections, TLS, HTTP/1.1 and HTTP/2 limits, the per-connection request budget, the drain |
//! | `routes.rs` | routing, and the endpoints that only read |
//! | `upload.rs` | `POST /v1/ballots`: the acceptance checks, in order |
//! | `auth.rs` | the voter behind a connection (certificate, roster) |
//! | `rate.rs` | per-voter limits: uploads per hour, uploads in progress |
//! | `refusal.rs` | a refused request: its code, message and operator detail |
//! | `election.rs` | the imported election and its upload-size rule |
//! | `health.rs` | the health listener |
//!
//! Starting and stopping a whole gateway (sequencer, listeners, the
//! shutdown order) is [`crate::app::Gateway`].

mod auth;
mod election;
mod health;
mod listener;
mod observer;
mod rate;
mod refusal;
mod routes;
mod upload;

pub use election::{Election, UPLOAD_OVERHEAD};
pub use health::run_health;
pub use listener::{raise_file_limit, run};
pub use refusal::chain_code;

use crate::config::{Limits, ServerConfig};
use crate::sequencer::Sequencer;
use shared::clock::Clock;
use shared::pki::TrustStore;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Protocol limits.
    pub server: ServerConfig,
    /// The election.
    pub election: Election,
    /// Trust anchors and CRLs (reloaded without a restart).
    pub trust: Arc<crate::reload::Live<TrustStore>>,
    /// The log writer.
    pub seq: Sequencer,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// A read connection for status queries.
    pub reader: Mutex<rusqlite::Connection>,
    /// The latest checkpoint a quorum of witnesses cosigned.
    pub witnessed: crate::witnessing::SharedWitnessed,
    /// Per-voter upload limits.
    voter_limits: rate::VoterLimits,
    /// Uploads whose bodies may be in memory at once.
    upload_slots: Semaphore,
    /// The Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
}

impl AppState {
    /// Assembles the state. (Each argument is a separate part the app builds at start-up;
    /// grouping them into a struct would only rename the list.)
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        server: ServerConfig,
        limits: &Limits,
        election: Election,
        trust: Arc<crate::reload::Live<TrustStore>>,
        seq: Sequencer,
        clock: Arc<dyn Clock>,
        reader: rusqlite::Connection,
        data_dir: std::path::PathBuf,
    ) -> Self {
        let upload_slots = Semaphore::new(
            server
                .max_uploads_in_memory
                .clamp(1, Semaphore::MAX_PERMITS),
        );
        let metrics = crate::metrics::Metrics::new(data_dir, seq.refusal_totals());
        AppState {
            metrics,
            server,
            election,
            trust,
            seq,
            clock,
            reader: Mutex::new(reader),
            witnessed: Default::default(),
            voter_limits: rate::VoterLimits::new(limits.uploads_per_voter_per_hour),
            upload_slots,
        }
    }
}

/// The TLS connection's facts a handler may use.
#[derive(Debug, Clone)]
struct ConnInfo {
    peer: SocketAddr,
    certs: Option<Vec<Vec<u8>>>,
}
