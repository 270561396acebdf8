//! Prometheus metrics, served as `GET /metrics` on the health listener
//! (loopback) in the OpenMetrics text format, by the Prometheus project's
//! own client crate.
//!
//! Counted as they happen: uploads by outcome and refusal code, refusals of
//! every kind (TLS handshakes included) by code, and the time from an
//! upload's first byte to its receipt. Read at each scrape: the log's size,
//! the witnessed size and how far behind it is, the seconds until each CA's
//! newest CRL runs out, and the free space where the database lives.
//!
//! Nothing here carries a voter's identity, an address or a certificate:
//! label values are error codes and CA names only, so the number of series
//! stays bounded whatever the clients send.

use crate::server::AppState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::path::PathBuf;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An upload's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UploadLabels {
    /// `accepted` (a new ballot logged), `duplicate` (a retry answered with
    /// its earlier receipt) or `refused`.
    pub outcome: &'static str,
    /// The refusal's code (`shared::api::ErrorCode`), empty otherwise.
    pub code: &'static str,
}

/// A refusal's kind and code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `tls` (during the handshake) or `rejection` (a refused request).
    pub kind: &'static str,
    /// The stable error code.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CrlLabels {
    issuer: String,
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    uploads: Family<UploadLabels, Counter>,
    receipt_seconds: Histogram,
    log_size: Gauge,
    witnessed_size: Gauge,
    witness_lag: Gauge,
    witnessed_age: Gauge,
    crl_remaining: Family<CrlLabels, Gauge>,
    storage_free: Gauge,
    storage_size: Gauge,
    data_dir: PathBuf,
}

impl Metrics {
    /// The metrics of a gateway whose database is in `data_dir`; `refusals`
    /// is the family the sequencer counts refusals in.
    pub fn new(data_dir: PathBuf, refusals: Family<RefusalLabels, Counter>) -> Metrics {
        let mut registry = Registry::with_prefix("ballot_gateway");
        let uploads = Family::<UploadLabels, Counter>::default();
        registry.register(
            "uploads",
            "Uploads answered, by outcome and refusal code",
            uploads.clone(),
        );
        registry.register(
            "refusals",
            "Refused handshakes and requests, by kind and code",
            refusals,
        );
        // 5 ms to about 80 s: a receipt waits for a group commit (an fsync)
        // on a fast disk, and for the whole upload on a slow link.
        let receipt_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 15),
        );
        registry.register_with_unit(
            "receipt",
            "Time from an upload's request to its receipt (accepted and duplicate)",
            Unit::Seconds,
            receipt_seconds.clone(),
        );
        let log_size = Gauge::default();
        registry.register(
            "log_size",
            "Entries in the ballot log's latest checkpoint",
            log_size.clone(),
        );
        let witnessed_size = Gauge::default();
        registry.register(
            "witnessed_size",
            "Size of the latest checkpoint a quorum of witnesses cosigned",
            witnessed_size.clone(),
        );
        let witness_lag = Gauge::default();
        registry.register(
            "witness_lag_entries",
            "Log entries not yet covered by a witnessed checkpoint",
            witness_lag.clone(),
        );
        let witnessed_age = Gauge::default();
        registry.register_with_unit(
            "witnessed_age",
            "Time since a quorum cosigned the latest witnessed checkpoint (-1: none yet)",
            Unit::Seconds,
            witnessed_age.clone(),
        );
        let crl_remaining = Family::<CrlLabels, Gauge>::default();
        registry.register_with_unit(
            "crl_next_update",
            "Time until the nextUpdate of each CA's newest CRL (negative: expired; \
             voters under that CA are refused until a current CRL is loaded)",
            Unit::Seconds,
            crl_remaining.clone(),
        );
        let storage_free = Gauge::default();
        registry.register_with_unit(
            "storage_free",
            "Space available to the gateway in its data folder's file system",
            Unit::Bytes,
            storage_free.clone(),
        );
        let storage_size = Gauge::default();
        registry.register_with_unit(
            "storage_size",
            "Size of the data folder's file system",
            Unit::Bytes,
            storage_size.clone(),
        );
        Metrics {
            registry,
            uploads,
            receipt_seconds,
            log_size,
            witnessed_size,
            witness_lag,
            witnessed_age,
            crl_remaining,
            storage_free,
            storage_size,
            data_dir,
        }
    }

    /// Counts an upload's answer; `seconds` since its request began, for a
    /// receipt.
    pub fn upload(&self, labels: UploadLabels, seconds: f64) {
        if labels.outcome != "refused" {
            self.receipt_seconds.observe(seconds);
        }
        self.uploads.get_or_create(&labels).inc();
    }

    /// The metrics now, in the OpenMetrics text format.
    pub fn render(&self, state: &AppState) -> String {
        let now = state.clock.now().0 as i64;
        let log_size = state.seq.checkpoint_size();
        let witnessed = state
            .witnessed
            .read()
            .ok()
            .and_then(|w| w.as_ref().map(|w| (w.size, w.time.0 as i64)));
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.log_size.set(gauge(log_size));
        let (wsize, wtime) = witnessed.unwrap_or((0, -1));
        self.witnessed_size.set(gauge(wsize));
        self.witness_lag.set(gauge(log_size.saturating_sub(wsize)));
        self.witnessed_age
            .set(if wtime < 0 { -1 } else { (now - wtime).max(0) });
        self.crl_remaining.clear();
        for (issuer, next) in state.trust.get().crl_next_updates() {
            if let Some(next) = next {
                self.crl_remaining
                    .get_or_create(&CrlLabels { issuer })
                    .set(next - now);
            }
        }
        if let Ok(fs) = rustix::fs::statvfs(&self.data_dir) {
            let block = fs.f_frsize.max(1);
            self.storage_free
                .set(gauge(fs.f_bavail.saturating_mul(block)));
            self.storage_size
                .set(gauge(fs.f_blocks.saturating_mul(block)));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
