//! `ballot-devpki OUT_DIR`: writes a development PKI (Test DoD root and ID
//! CA, county voter CA, CAC-shaped voters, CRLs, a localhost server
//! certificate) for tests and the demo. Never for a real election.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        bail!("usage: ballot-devpki OUT_DIR\n\nWrites a development PKI into OUT_DIR (which must not contain one yet).");
    };
    let out = std::path::PathBuf::from(out);
    let pki = devpki::generate(time::OffsetDateTime::now_utc())
        .context("generating the development PKI")?;
    pki.write_to(&out)
        .with_context(|| format!("writing the development PKI to {}", out.display()))?;
    println!(
        "Development PKI written to {} (every name says Test; never use it for a real election).",
        out.display()
    );
    for v in &pki.voters {
        println!("  voters/{}: {} ({})", v.label, v.identity, v.purpose);
    }
    Ok(())
}
