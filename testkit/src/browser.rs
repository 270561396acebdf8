//! A real browser for the page tests: Debian's Chromium, headless, driven
//! through WebDriver (its chromedriver) by fantoccini. Screenshots go to
//! `target/screenshots/`, where the README's images are taken from
//! (`scripts/screenshots` copies them to `docs/screenshots/`).

use base64::prelude::*;
use fantoccini::{Client, ClientBuilder};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use fantoccini::Locator;

/// A browser session and the chromedriver behind it (killed on drop).
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Browser")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads a process group of its own, which the browser
        // it started joins: the whole group goes, even when a test panics
        // before closing the session (a killed chromedriver alone leaves
        // Chromium running).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A program a test started, killed when the test ends however it ends.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn found(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The folder screenshots are written to.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("screenshots")
}

/// The base64 SHA-256 of a certificate's public key, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it: the browser then
/// trusts that one server key (the development gateway's) and no other.
pub fn spki_pin(cert_pem: &[u8]) -> String {
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem)
        .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
        .expect("a PEM certificate");
    let cert = x509_spki(&der);
    BASE64_STANDARD.encode(Sha256::digest(cert))
}

/// The DER of a certificate's SubjectPublicKeyInfo.
fn x509_spki(der: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).expect("a certificate");
    cert.tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("SPKI encodes")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that trusts the server
    /// key `spki_pin` ([`spki_pin`]; empty for none). `Err` says why it cannot run here
    /// (Chromium or chromedriver not installed): the caller prints SKIPPED.
    pub async fn start(spki_pin: &str) -> Result<Browser, String> {
        let (Some(chromium), Some(driver)) = (found("chromium"), found("chromedriver")) else {
            return Err(
                "chromium and chromedriver (Debian's chromium, chromium-driver) are not installed"
                    .into(),
            );
        };
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut child = Command::new(driver);
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver: {e}"))?;
        let args: Vec<String> = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            "--window-size=1000,1300".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut args = args;
        if !spki_pin.is_empty() {
            args.push(format!("--ignore-certificate-errors-spki-list={spki_pin}"));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        // chromedriver takes a moment to listen; on a loaded machine more.
        let url = format!("http://127.0.0.1:{port}");
        let mut last = String::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("chromedriver ended at once ({status})"));
            }
            match ClientBuilder::rustls()
                .map_err(|e| e.to_string())?
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Ok(Browser {
                        client,
                        driver: child,
                        _profile: profile,
                    })
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        Err(format!("could not open a browser session: {last}"))
    }

    /// Writes a screenshot of the window as `name`.png.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Writes a screenshot as `name`.png with the element `css` scrolled
    /// into view (its bottom at the window's).
    pub async fn screenshot_at(&self, name: &str, css: &str) -> PathBuf {
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'end'});",
                vec![serde_json::Value::from(css)],
            )
            .await
            .unwrap();
        self.screenshot(name).await
    }

    /// The text of the first element matching `css`, once it shows
    /// `wanted` (waiting at most 60 s: a loaded machine is slow); panics
    /// with what it showed instead.
    pub async fn wait_text(&self, css: &str, wanted: &str) -> String {
        let mut last = String::new();
        for _ in 0..600 {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    if t.contains(wanted) {
                        return t;
                    }
                    last = t;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {wanted:?}; it showed {last:?}");
    }

    /// Visible text whose contrast with its background is below WCAG 2.1
    /// AA (4.5:1, or 3:1 for large text: 24 px, or 18.66 px bold);
    /// disabled controls are exempt, as WCAG says. Each as "text: ratio".
    pub async fn contrast_failures(&self) -> Vec<String> {
        let v = self
            .client
            .execute(CONTRAST, vec![])
            .await
            .expect("the contrast check runs");
        serde_json::from_value(v).expect("a list of failures")
    }

    /// Ends the session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// The contrast check, run in the page (WCAG 2.1 relative luminance).
const CONTRAST: &str = r#"
const parse = (c) => {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return [0, 0, 0, 1];
  const p = m[1].split(',').map((x) => parseFloat(x));
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const lum = ([r, g, b]) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const background = (e) => {
  for (let n = e; n; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c[3] > 0) return c;
  }
  return [255, 255, 255, 1];
};
const out = [];
for (const e of document.body.querySelectorAll('*')) {
  if (e.closest('[hidden]') || e.getClientRects().length === 0) continue;
  if (e.disabled || e.closest('.visually-hidden')) continue;
  const own = Array.from(e.childNodes).filter((n) => n.nodeType === 3 && n.textContent.trim()).map((n) => n.textContent.trim()).join(' ');
  if (!own) continue;
  const st = getComputedStyle(e);
  const a = lum(parse(st.color)), b = lum(background(e));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const px = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
  const need = (px >= 24 || (px >= 18.66 && bold)) ? 3 : 4.5;
  if (ratio < need) out.push(own.slice(0, 60) + ': ' + ratio.toFixed(2));
}
return out;
"#;
