//! SoftHSM2 tokens standing in for CACs: a real PKCS #11 module, its token
//! kept in a test's own folder. Tokens are made with SoftHSM's and OpenSC's
//! own tools (`softhsm2-util`, `pkcs11-tool`): keys are generated on the
//! token (sensitive, never extractable), and the development PKI certifies
//! the public keys read back from it.
//!
//! The tools' command lines carry the test PIN: these are throwaway test
//! tokens, never a voter's card.

use devpki::{CertSpec, DevPki, KeyAlg};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where distributions install SoftHSM2's module.
const MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// OpenSC's logging PKCS #11 module, which records every call made
/// through it (used to count PIN tries).
const SPY: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/pkcs11-spy.so",
    "/usr/lib64/pkcs11/pkcs11-spy.so",
    "/usr/lib/pkcs11/pkcs11-spy.so",
];

fn first(places: &[&str]) -> Option<PathBuf> {
    places.iter().map(PathBuf::from).find(|p| p.is_file())
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// SoftHSM2's module if it and the tools are installed, else why not
/// (the caller prints SKIPPED with it).
pub fn available() -> Result<PathBuf, String> {
    let module = first(MODULES).ok_or(
        "SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)".to_owned(),
    )?;
    for tool in ["softhsm2-util", "pkcs11-tool"] {
        if !on_path(tool) {
            return Err(format!(
                "{tool} is not installed (Debian packages softhsm2 and opensc; .ci/run installs them)"
            ));
        }
    }
    Ok(module)
}

/// OpenSC's pkcs11-spy module, if installed.
pub fn spy() -> Option<PathBuf> {
    first(SPY)
}

/// The test PIN of every token made here.
pub const PIN: &str = "246810";
const SO_PIN: &str = "13579111";

/// One SoftHSM token in a folder of its own.
#[derive(Debug)]
pub struct SoftCard {
    /// The module.
    pub module: PathBuf,
    /// SoftHSM's configuration file (give it as `SOFTHSM2_CONF`).
    pub conf: PathBuf,
    /// The token label.
    pub label: String,
}

impl SoftCard {
    /// Initialises an empty token labelled `label` under `dir`.
    pub fn new(module: &Path, dir: &Path, label: &str) -> SoftCard {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        let card = SoftCard {
            module: module.to_owned(),
            conf,
            label: label.to_owned(),
        };
        card.run(
            Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--so-pin", SO_PIN, "--pin", PIN]),
        );
        card
    }

    /// A command with this token's configuration in its environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SOFTHSM2_CONF", &self.conf);
        c
    }

    fn run(&self, c: &mut Command) -> String {
        c.env("SOFTHSM2_CONF", &self.conf);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{c:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn tool(&self) -> Command {
        let mut c = Command::new("pkcs11-tool");
        c.arg("--module")
            .arg(&self.module)
            .args(["--token-label", &self.label]);
        c
    }

    /// Generates a key pair on the token (sensitive, never extractable)
    /// under `id` (hex) and returns its public key (SubjectPublicKeyInfo).
    pub fn generate(&self, id: &str, label: &str, alg: KeyAlg) -> Vec<u8> {
        let key_type = match alg {
            KeyAlg::P256 => "EC:prime256v1",
            KeyAlg::P384 => "EC:secp384r1",
            KeyAlg::Rsa2048 => "rsa:2048",
        };
        self.run(
            self.tool()
                .args(["--login", "--pin", PIN, "--keypairgen"])
                .args(["--key-type", key_type, "--id", id, "--label", label]),
        );
        let out = tempfile::NamedTempFile::new().unwrap();
        self.run(
            self.tool()
                .args(["--read-object", "--type", "pubkey", "--id", id])
                .arg("-o")
                .arg(out.path()),
        );
        std::fs::read(out.path()).unwrap()
    }

    /// Stores a certificate on the token under `id` (hex).
    pub fn store_certificate(&self, id: &str, label: &str, der: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), der).unwrap();
        self.run(
            self.tool()
                .args(["--login", "--pin", PIN, "--write-object"])
                .arg(file.path())
                .args(["--type", "cert", "--id", id, "--label", label]),
        );
    }

    /// The token's flags as `pkcs11-tool` lists them.
    pub fn flags(&self) -> String {
        let out = self.run(self.tool().arg("--list-token-slots"));
        out.lines()
            .find(|l| l.contains("token flags"))
            .unwrap_or("")
            .to_owned()
    }
}

/// The certificates a test card carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// PIV Authentication and Digital Signature, as a CAC.
    Both,
    /// Only a card-authentication certificate.
    CardAuthenticationOnly,
}

/// A SoftHSM "CAC" for the voter `edipi` (`last`, `first`), with keys of
/// `alg` generated on it and certificates from the development PKI's ID
/// CA, in slots 01 (PIV Authentication) and 02 (Digital Signature), or 04
/// (Card Authentication), labelled as OpenSC labels a PIV card's objects.
pub fn cac(
    module: &Path,
    pki: &DevPki,
    dir: &Path,
    label: &str,
    (last, first, edipi): (&str, &str, &str),
    alg: KeyAlg,
    carries: Carries,
) -> SoftCard {
    let card = SoftCard::new(module, dir, label);
    let now = crate::now();
    match carries {
        Carries::Both => {
            let spki = card.generate("01", "PIV AUTH key", alg);
            let (cert, _) = pki
                .id_ca
                .issue_for(&devpki::cac_spec(last, first, "X", edipi, alg, now), &spki)
                .unwrap();
            card.store_certificate("01", "Certificate for PIV Authentication", &cert);
            let spki = card.generate("02", "SIGN key", alg);
            let (cert, _) = pki
                .id_ca
                .issue_for(
                    &devpki::cac_signature_spec(last, first, "X", edipi, alg, now),
                    &spki,
                )
                .unwrap();
            card.store_certificate("02", "Certificate for Digital Signature", &cert);
        }
        Carries::CardAuthenticationOnly => {
            let spki = card.generate("04", "CARD AUTH key", alg);
            let (cert, _) = pki
                .id_ca
                .issue_for(
                    &CertSpec {
                        ekus: vec![devpki::oid::PIV_CARD_AUTH],
                        policies: vec![devpki::oid::DOD_MEDIUM_HARDWARE_112],
                        ..CertSpec::leaf(
                            &format!("CN={edipi},OU=DoD,O=U.S. Government,C=US"),
                            alg,
                            now,
                            365,
                        )
                    },
                    &spki,
                )
                .unwrap();
            card.store_certificate("04", "Certificate for Card Authentication", &cert);
        }
    }
    card
}
