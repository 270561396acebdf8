//! The Prometheus endpoint on the health listener, scraped over plain HTTP
//! as Prometheus would: every series the runbook's alerts use is there and
//! moves with what the gateway did.

use crate::fixture::{post, World};
use gateway::config::Limits;
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` on 127.0.0.1:`port`; the status line, headers and body.
async fn get(port: u16, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// The samples of an OpenMetrics text exposition: `name{labels}` to value.
/// Checks the format's rules the test relies on: every sample's family was
/// declared with `# TYPE` first, and the exposition ends with `# EOF`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
    let mut families = Vec::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            families.push(t.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(
            families.iter().any(|f| name.starts_with(f.as_str())),
            "{name} has no # TYPE line before it"
        );
        out.insert(series.to_owned(), value.parse::<f64>().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_uploads_refusals_and_report_log_crls_and_disk() {
    let w = World::new(Limits::default());
    let r = w.start().await;

    let (head, _) = get(r.health_port, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );

    // One ballot, its retry, and a refused upload.
    let gw = w.client(&r, "jane-p256");
    let ballot = w.ballot("jane-p256", "metrics");
    w.upload_checked(&gw, &ballot).await;
    w.upload_checked(&gw, &ballot).await;
    let refused = post(&gw, b"not a ballot at all".to_vec()).await.unwrap();
    assert!(!refused.status.is_success());
    let (code, _) = refused.error();
    // A revoked card, refused during the handshake.
    assert!(post(&w.client(&r, "rick-revoked"), ballot.clone())
        .await
        .is_err());

    let (_, body) = get(r.health_port, "/metrics").await;
    let m = samples(&body);
    let series = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("no series {k} in the scrape:\n{body}"))
    };
    assert_eq!(
        series(r#"ballot_gateway_uploads_total{outcome="accepted",code=""}"#),
        1.0
    );
    assert_eq!(
        series(r#"ballot_gateway_uploads_total{outcome="duplicate",code=""}"#),
        1.0
    );
    assert_eq!(
        series(&format!(
            r#"ballot_gateway_uploads_total{{outcome="refused",code="{code}"}}"#
        )),
        1.0
    );
    assert_eq!(
        series(&format!(
            r#"ballot_gateway_refusals_total{{kind="rejection",code="{code}"}}"#
        )),
        1.0
    );
    assert!(
        series(r#"ballot_gateway_refusals_total{kind="tls",code="certificate-revoked"}"#) >= 1.0
    );
    assert_eq!(series("ballot_gateway_receipt_seconds_count"), 2.0);
    assert!(series("ballot_gateway_receipt_seconds_sum") > 0.0);
    assert_eq!(
        series(r#"ballot_gateway_receipt_seconds_bucket{le="+Inf"}"#),
        2.0
    );
    assert_eq!(series("ballot_gateway_log_size"), 1.0);
    // No witness in this election: nothing is witnessed yet.
    assert_eq!(series("ballot_gateway_witness_lag_entries"), 1.0);
    assert_eq!(series("ballot_gateway_witnessed_age_seconds"), -1.0);
    // The development CRLs are current: each CA's is listed with time left.
    let crls: Vec<(&String, &f64)> = m
        .iter()
        .filter(|(k, _)| k.starts_with("ballot_gateway_crl_next_update_seconds{"))
        .collect();
    assert!(crls.len() >= 2, "CRLs missing from the scrape:\n{body}");
    for (k, v) in &crls {
        assert!(**v > 0.0, "{k} is {v}");
    }
    let free = series("ballot_gateway_storage_free_bytes");
    let size = series("ballot_gateway_storage_size_bytes");
    assert!(free > 0.0 && free <= size, "free {free} of {size}");
    // Every series the example alert rules use is in the scrape.
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/prometheus/ballot-gateway-alerts.yml"),
    )
    .unwrap();
    let mut used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ballot_gateway_"))
        .collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 6, "{used:?}");
    for name in used {
        assert!(
            m.keys()
                .any(|k| k == name || k.starts_with(&format!("{name}{{"))),
            "the alert rules use {name}, which the gateway does not serve:\n{body}"
        );
    }
    // Nothing a voter sent or is appears in the metrics.
    assert!(!body.contains("edipi") && !body.contains("urn:") && !body.contains("127.0.0.1"));

    let (head, _) = get(r.health_port, "/nothing-here").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    r.stop().await;
}
