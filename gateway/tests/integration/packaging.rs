//! What ships beside the binary: the systemd units (checked by
//! `systemd-analyze verify` and scored by `systemd-analyze security`) and
//! the CRL refresh script the timer runs, against CRLs made by the
//! development PKI and served from files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

/// The unit with its programs pointed at this checkout's (the installed
/// paths do not exist here).
fn unit_here(tmp: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(packaging().join("systemd").join(name))
        .or_else(|_| std::fs::read_to_string(packaging().join("systemd/crl-refresh").join(name)))
        .unwrap();
    let text = text
        .replace(
            "/usr/bin/ballot-gateway",
            env!("CARGO_BIN_EXE_ballot-gateway"),
        )
        .replace(
            "/usr/lib/ballot-gateway/crl-refresh",
            packaging().join("crl-refresh").to_str().unwrap(),
        );
    let path = tmp.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_units_verify_and_the_gateway_service_scores_ok() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: the_units_verify_and_the_gateway_service_scores_ok: systemd-analyze is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let units: Vec<PathBuf> = [
        "ballot-gateway.service",
        "ballot-gateway-crl-refresh.service",
        "ballot-gateway-crl-refresh.timer",
    ]
    .iter()
    .map(|n| unit_here(tmp.path(), n))
    .collect();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    for (unit, most) in [(&units[0], 2.0), (&units[1], 2.0)] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(unit)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("no score: {text}{}", String::from_utf8_lossy(&out.stderr)));
        let score: f64 = line
            .rsplit(':')
            .next()
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
        println!("{}", line.trim());
        assert!(score <= most, "{line}: more exposed than {most}");
        assert!(
            line.contains("OK") || line.contains("SAFE") || line.contains("PERFECT"),
            "{line}"
        );
    }
}

struct Refresh {
    tmp: tempfile::TempDir,
    pki: devpki::DevPki,
}

impl Refresh {
    fn new() -> Refresh {
        let tmp = tempfile::tempdir().unwrap();
        let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
        pki.write_to(&tmp.path().join("pki")).unwrap();
        std::fs::create_dir(tmp.path().join("crls")).unwrap();
        std::fs::create_dir(tmp.path().join("served")).unwrap();
        std::fs::write(
            tmp.path().join("sources"),
            format!(
                "# name issuer url\n\nid-ca {} file://{}\n",
                tmp.path()
                    .join("pki/intermediates/test-dod-id-ca-59.pem")
                    .display(),
                tmp.path().join("served/id.crl").display()
            ),
        )
        .unwrap();
        Refresh { tmp, pki }
    }

    /// Serves `crl` and runs the script; returns its exit status and what it said.
    fn run(&self, crl: &[u8]) -> (i32, String) {
        std::fs::write(self.tmp.path().join("served/id.crl"), crl).unwrap();
        let out = Command::new("sh")
            .arg(packaging().join("crl-refresh"))
            .arg(self.tmp.path().join("sources"))
            .arg(self.tmp.path().join("crls"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn in_place(&self) -> Option<Vec<u8>> {
        std::fs::read(self.tmp.path().join("crls/id-ca.crl")).ok()
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp.path().join("crls"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "id-ca.crl")
            .collect()
    }
}

#[test]
fn crl_refresh_puts_only_current_signed_newer_crls_in_place() {
    if Command::new("openssl").arg("version").output().is_err()
        || Command::new("curl").arg("--version").output().is_err()
    {
        println!("SKIPPED: crl_refresh_puts_only_current_signed_newer_crls_in_place: openssl or curl is missing");
        return;
    }
    let r = Refresh::new();
    let now = time::OffsetDateTime::now_utc();
    let (hour, week) = (time::Duration::hours(1), time::Duration::days(7));
    let good = r.pki.id_ca.crl(5, &[], now - hour, now + week).unwrap();
    let (code, said) = r.run(&good);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("id-ca: in place"), "{said}");
    assert_eq!(r.in_place().as_deref(), Some(&good[..]));

    // Each bad CRL is refused with its reason, and the good one stays.
    let bad: [(&str, Vec<u8>); 4] = [
        (
            "older",
            r.pki.id_ca.crl(3, &[], now - hour, now + week).unwrap(),
        ),
        (
            "out of date",
            r.pki.id_ca.crl(6, &[], now - week, now - hour).unwrap(),
        ),
        (
            "not a CRL signed by",
            r.pki.root.crl(7, &[], now - hour, now + week).unwrap(),
        ),
        ("not a CRL signed by", b"<html>maintenance</html>".to_vec()),
    ];
    for (why, crl) in bad {
        let (code, said) = r.run(&crl);
        assert_eq!(code, 1, "{why}: {said}");
        assert!(
            said.contains(why) && said.contains("kept the CRL in place"),
            "{why}: {said}"
        );
        assert_eq!(r.in_place().as_deref(), Some(&good[..]), "{why}");
        assert!(r.leftovers().is_empty(), "{why}: {:?}", r.leftovers());
    }

    // A newer one, in PEM, replaces it.
    let newer = r.pki.id_ca.crl(8, &[], now - hour, now + week).unwrap();
    let pem = pem::encode(&pem::Pem::new("X509 CRL", newer.clone()));
    let (code, said) = r.run(pem.as_bytes());
    assert_eq!(code, 0, "{said}");
    assert_eq!(r.in_place().as_deref(), Some(pem.as_bytes()));
}
