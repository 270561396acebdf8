//! The receipt on paper: one page a voter can print and keep, with what it
//! means in plain words and the whole receipt, so that the paper alone is
//! enough to check the ballot later.

use crate::client::SavedReceipt;
use anyhow::{Context, Result};
use shared::checkpoint::Checkpoint;
use shared::receipt::Receipt;

/// The printable receipt for `saved`, as a one-page PDF.
pub fn receipt_pdf(saved: &SavedReceipt) -> Result<Vec<u8>> {
    let receipt =
        Receipt::parse(saved.receipt.as_bytes()).context("the saved receipt cannot be read")?;
    let note = shared::note::Note::parse(receipt.checkpoint.as_bytes())
        .context("the receipt's checkpoint cannot be read")?;
    let cp =
        Checkpoint::parse_text(note.text()).context("the receipt's checkpoint cannot be read")?;
    let mut p = shared::printed::Printed::new(
        "Receipt for your returned ballot",
        &format!(
            "election {} - log entry {}",
            saved.election_id, saved.leaf_index
        ),
    );
    p.text(&format!(
        "Election {}. Your ballot was received by {} at {} and written into the county's \
         public log as entry number {}.",
        saved.election_id, saved.gateway, receipt.entry.received_at, saved.leaf_index
    ));
    p.strong(
        "This receipt shows that your sealed ballot is in the log. It does not show how you \
         voted: no one but the county's election board can open the ballot, and they cannot \
         tell from the ballot who you are.",
    );
    p.heading("What was received");
    p.mono(&format!(
        "log entry        {}\n\
         received at      {}\n\
         your voter id    {}\n\
         sealed ballot    SHA-256 {}\n\
         log              {}\n\
         log size         {} (when this receipt was made)\n\
         log root         {}\n\
         election key     {}",
        saved.leaf_index,
        receipt.entry.received_at,
        saved.voter_id,
        saved.message_sha256,
        cp.origin,
        cp.size,
        hex::encode(cp.root),
        saved.election_fingerprint
    ));
    p.heading("How to check it later");
    p.item(
        "On this computer: run \"ballot-return status\" (or open ballot-return's page and \
         choose \"Check my ballot\"). It asks the gateway for a proof that this entry is still \
         in the log and shows what the county decided about your ballot.",
    );
    p.item(
        "From anywhere: paste the receipt below into the county's public log page, or give it \
         to an observer. The county's ballot-audit program is the authoritative check.",
    );
    p.item(
        "If a check ever says the entry is missing or different, keep this paper and contact \
         your county election office: it is evidence.",
    );
    p.heading("The receipt");
    p.mono(&saved.receipt);
    p.heading("To prove it is yours");
    p.text(&format!(
        "The log lists a commitment to your voter id, not the id itself. This number (keep it \
         private; with it, anyone can link this entry to your voter id): {}",
        saved.salt
    ));
    p.to_pdf().context("cannot write the receipt as PDF")
}
