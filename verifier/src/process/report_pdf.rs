//! `report.pdf`: the canvass report as the board prints, reads and signs
//! it. It says what `report.txt` says, laid out for paper, with a line for
//! each board member's signature.

use super::{Contents, Outcome};
use anyhow::{Context, Result};
use shared::checkpoint::SignedCheckpoint;
use shared::manifest::ElectionManifest;
use shared::printed::Printed;

/// The board members who sign the report.
const SIGNERS: [&str; 3] = ["Board member", "Board member", "Board member"];

/// The report as a PDF.
pub(in crate::process) fn report_pdf(
    m: &ElectionManifest,
    o: &Outcome,
    cp: &SignedCheckpoint,
) -> Result<Vec<u8>> {
    let mut p = Printed::new(
        &format!("{}: electronically returned ballots", m.title),
        &format!("{} - election {}", m.jurisdiction, m.election_id),
    );
    p.text(&format!(
        "{}\nElection {} - voting closed {}",
        m.jurisdiction, m.election_id, m.closes_at
    ));
    p.text("Report of ballots returned electronically by overseas and military voters.");
    match &o.contents {
        Contents::NotYet { after } => p.strong(&format!(
            "INTERIM RUN: statuses and counts only. No ballot content was written; the final \
             canvass writes the contents once, after {after}."
        )),
        Contents::Written { again: None } => p.text(
            "Final canvass: the accepted ballots are in the folder ballots/, in random order, with no names.",
        ),
        Contents::Written { again: Some(why) } => p.strong(&format!(
            "WRITTEN AGAIN: an earlier final canvass had written the contents already; the board \
             overrode the refusal for this reason: {why}"
        )),
    };

    p.heading("Alarms for the board");
    if o.alarms.is_empty() {
        p.text("None. Nothing in the log or the ballots points to misbehaviour by the gateway.");
    } else {
        p.strong(&format!(
            "{} alarm(s): look into each before certifying.",
            o.alarms.len()
        ));
        for (i, a) in o.alarms.iter().enumerate() {
            p.item(&format!("{}. {a}", i + 1));
        }
    }

    p.heading("Counts");
    let counts = format!(
        "Ballots received and logged   {:>8}\n\
         Accepted (to be counted)      {:>8}\n\
         Superseded by a later ballot  {:>8}\n\
         Rejected                      {:>8}",
        o.total,
        o.accepted,
        o.superseded,
        o.rejected_total()
    );
    p.mono(&counts);
    if !o.rejected.is_empty() {
        p.text("Rejected, by reason:");
    }
    for (r, n) in &o.rejected {
        p.item(&format!("{n}: {} ({})", r.explain(), r.name()));
    }
    if o.revoked_after_receipt > 0 {
        p.text(&format!(
            "{} accepted ballot(s) came from a card revoked after the ballot was received; they \
             count (the card was valid when the ballot was proven to exist):",
            o.revoked_after_receipt
        ));
        for (voter, leaf, at) in &o.counted_though_revoked_later {
            p.mono(&format!(
                "voter {voter}, log entry {leaf}: card revoked {at}"
            ));
        }
    }
    if o.pdfs_with_metadata > 0 {
        p.text(&format!(
            "{} accepted PDF ballot(s) could not be read to remove their metadata; they are in \
             ballots/ as the voters sent them.",
            o.pdfs_with_metadata
        ));
    }
    p.heading("Time");
    p.text(&o.time_rule);

    p.heading("The log");
    p.text(&format!(
        "The verifier checked every ballot against the gateway's log up to this signed checkpoint: \
         {} entries.",
        cp.checkpoint.size
    ));
    p.mono(&format!(
        "origin {}\nroot   {}",
        cp.checkpoint.origin,
        hex::encode(cp.checkpoint.root)
    ));

    p.heading("Trust anchors");
    p.text(
        "Voter certificates were validated under these anchors, pinned in the signed manifest \
         (SHA-256 of each anchor certificate):",
    );
    for a in &o.anchors {
        p.text(&format!(
            "{} - identity {}; policies {}",
            a.name,
            a.identity,
            a.policies.join(", ")
        ));
        p.mono(&a.sha256_hex());
    }
    p.heading("Certificate revocation lists");
    if o.crls.is_empty() {
        p.text("None.");
    }
    for c in &o.crls {
        p.text(&format!(
            "{}: issued {}, next update {}, {} revoked certificate(s)",
            c.issuer,
            c.this_update,
            c.next_update
                .map_or_else(|| "none given".to_owned(), |t| t.to_string()),
            c.entries
        ));
        p.mono(&c.sha256);
    }

    p.heading("Certification");
    p.text(
        "We have reviewed this report and the alarms above. The list of voters and each \
         ballot's status is in voters.csv; the signed status file for the gateway is beside \
         this report.",
    );
    p.signatures(&SIGNERS);
    p.to_pdf().context("cannot write report.pdf")
}
