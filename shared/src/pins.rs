//! Trust anchors pinned by the signed election manifest
//! (`docs/spec/identity.md`, "Pinned anchors"). What decides who may vote
//! as whom is the county's signed word, not a choice made at each run: the
//! gateway's configured anchors must be exactly the pinned ones, and the
//! verifier uses pinned anchors and refuses any other.

use crate::manifest::PinnedAnchor;
use crate::pki::Anchor;
use sha2::{Digest, Sha256};
use std::fmt;

/// The pin an anchor makes (at `init`, when the manifest is written).
pub fn pin_of(anchor: &Anchor) -> PinnedAnchor {
    PinnedAnchor {
        name: anchor.name.clone(),
        cert_sha256: Sha256::digest(&anchor.cert_der).into(),
        identity: anchor.policy.rule.clone(),
        policies: anchor.policy.accepted_policies.clone(),
    }
}

/// One way a set of anchors disagrees with the pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disagreement {
    /// An anchor certificate the manifest does not pin (a rogue anchor).
    NotPinned {
        /// Its configured name.
        name: String,
        /// Its SHA-256, hex.
        sha256: String,
    },
    /// Pinned, but configured with another identity rule.
    OtherIdentityRule {
        /// The pin's name.
        name: String,
        /// The manifest's rule.
        pinned: String,
        /// The configured rule.
        configured: String,
    },
    /// Pinned, but configured with other accepted policies.
    OtherPolicies {
        /// The pin's name.
        name: String,
        /// The manifest's policies.
        pinned: Vec<String>,
        /// The configured policies.
        configured: Vec<String>,
    },
    /// A pinned anchor that is not configured.
    Missing {
        /// The pin's name.
        name: String,
        /// Its SHA-256, hex.
        sha256: String,
    },
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disagreement::NotPinned { name, sha256 } => write!(
                f,
                "trust anchor {name:?} (SHA-256 {sha256}) is not pinned in the signed manifest"
            ),
            Disagreement::OtherIdentityRule {
                name,
                pinned,
                configured,
            } => write!(
                f,
                "trust anchor {name:?}: the manifest pins identity rule {pinned}, the configuration says {configured}"
            ),
            Disagreement::OtherPolicies {
                name,
                pinned,
                configured,
            } => write!(
                f,
                "trust anchor {name:?}: the manifest pins policies [{}], the configuration says [{}]",
                pinned.join(", "),
                configured.join(", ")
            ),
            Disagreement::Missing { name, sha256 } => write!(
                f,
                "the manifest pins trust anchor {name:?} (SHA-256 {sha256}), which is not configured"
            ),
        }
    }
}

/// How `anchors` disagree with `pins`. With `all_pins_needed`, a pin no
/// anchor matches is a disagreement too (the gateway must serve every
/// pinned anchor's voters; the verifier may be given a subset).
pub fn compare(
    anchors: &[Anchor],
    pins: &[PinnedAnchor],
    all_pins_needed: bool,
) -> Vec<Disagreement> {
    let mut out = Vec::new();
    let mut seen = vec![false; pins.len()];
    for a in anchors {
        let mine = pin_of(a);
        let Some(i) = pins.iter().position(|p| p.cert_sha256 == mine.cert_sha256) else {
            out.push(Disagreement::NotPinned {
                name: a.name.clone(),
                sha256: mine.sha256_hex(),
            });
            continue;
        };
        if let Some(s) = seen.get_mut(i) {
            *s = true;
        }
        let Some(pin) = pins.get(i) else { continue };
        if pin.identity != mine.identity {
            out.push(Disagreement::OtherIdentityRule {
                name: pin.name.clone(),
                pinned: pin.identity.to_string(),
                configured: mine.identity.to_string(),
            });
        }
        if !pin.same_policies(&mine.policies) {
            out.push(Disagreement::OtherPolicies {
                name: pin.name.clone(),
                pinned: pin.policies.clone(),
                configured: mine.policies.clone(),
            });
        }
    }
    if all_pins_needed {
        for (pin, seen) in pins.iter().zip(seen) {
            if !seen {
                out.push(Disagreement::Missing {
                    name: pin.name.clone(),
                    sha256: pin.sha256_hex(),
                });
            }
        }
    }
    out
}

/// The anchors a pin list stands for, given the certificates (DER) kept
/// beside it: each certificate must hash to its pin. Used by the verifier,
/// which keeps the pinned certificates from `init`.
pub fn anchors_from_pins(
    pins: &[PinnedAnchor],
    certificate: &dyn Fn(&PinnedAnchor) -> Option<Vec<u8>>,
) -> Result<Vec<Anchor>, Disagreement> {
    pins.iter()
        .map(|pin| {
            let der = certificate(pin)
                .filter(|d| <[u8; 32]>::from(Sha256::digest(d)) == pin.cert_sha256)
                .ok_or_else(|| Disagreement::Missing {
                    name: pin.name.clone(),
                    sha256: pin.sha256_hex(),
                })?;
            Ok(Anchor {
                name: pin.name.clone(),
                cert_der: der,
                policy: crate::x509::IdentityPolicy {
                    accepted_policies: pin.policies.clone(),
                    rule: pin.identity.clone(),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::{IdentityPolicy, IdentityRule};

    fn anchor(name: &str, der: &[u8], rule: IdentityRule, policies: &[&str]) -> Anchor {
        Anchor {
            name: name.into(),
            cert_der: der.to_vec(),
            policy: IdentityPolicy {
                accepted_policies: policies.iter().map(|s| (*s).to_owned()).collect(),
                rule,
            },
        }
    }

    #[test]
    fn every_kind_of_disagreement_is_named() {
        let dod = anchor(
            "dod",
            b"dod-root",
            IdentityRule::Edipi,
            &["2.16.840.1.101.2.1.11.9"],
        );
        let county = anchor(
            "county",
            b"county-root",
            IdentityRule::UriPrefix("urn:c:".into()),
            &["1.2.3"],
        );
        let pins = vec![pin_of(&dod), pin_of(&county)];
        assert!(compare(&[dod.clone(), county.clone()], &pins, true).is_empty());
        // Order and duplicates of policies do not matter.
        let mut reordered = county.clone();
        reordered.policy.accepted_policies = vec!["1.2.3".into(), "1.2.3".into()];
        assert!(compare(&[reordered], &pins, false).is_empty());

        let rogue = anchor(
            "rogue",
            b"rogue-root",
            IdentityRule::Edipi,
            &["2.16.840.1.101.2.1.11.9"],
        );
        let d = compare(&[dod.clone(), rogue], &pins, true);
        assert!(
            matches!(&d[..], [Disagreement::NotPinned { name, .. }, Disagreement::Missing { name: m, .. }] if name == "rogue" && m == "county"),
            "{d:?}"
        );
        assert!(d[0]
            .to_string()
            .contains("not pinned in the signed manifest"));

        let mut widened = county.clone();
        widened.policy.rule = IdentityRule::UriPrefix("urn:".into());
        widened.policy.accepted_policies.push("2.5.29.32.0".into());
        let d = compare(&[widened], &pins, false);
        assert!(
            matches!(
                &d[..],
                [
                    Disagreement::OtherIdentityRule { .. },
                    Disagreement::OtherPolicies { .. }
                ]
            ),
            "{d:?}"
        );

        let back = anchors_from_pins(&pins, &|p| {
            Some(if p.name == "dod" {
                b"dod-root".to_vec()
            } else {
                b"county-root".to_vec()
            })
        })
        .unwrap();
        assert!(compare(&back, &pins, true).is_empty());
        // A kept certificate that does not hash to its pin is refused.
        assert!(anchors_from_pins(&pins, &|_| Some(b"dod-root".to_vec())).is_err());
    }
}
