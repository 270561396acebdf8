//! Certificate policy processing through the path (RFC 5280 section 6.1),
//! in a documented strict subset (`docs/spec/identity.md`, "Policies
//! through the path"): a voter certificate's policy counts only if every
//! CA between it and the anchor was authorised for it, so an intermediate
//! authorised only for software keys cannot issue a certificate that
//! claims mediumHardware.
//!
//! The inputs of section 6.1.1 are fixed: user-initial-policy-set is the
//! anchor's accepted policies, initial-explicit-policy is set (every
//! certificate below the anchor must assert a policy valid through the
//! path), initial-any-policy-inhibit is clear. What the subset does not
//! implement it refuses: a certificate with policyMappings is refused (so
//! inhibitPolicyMapping never matters), and policy qualifiers are ignored
//! (RFC 5280 allows a relying party to). With no mappings, the valid policy
//! tree of section 6.1.3 collapses to a set of policies plus whether its
//! anyPolicy branch is still alive, which is what this code keeps.

use std::collections::BTreeSet;
use thiserror::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

/// anyPolicy (RFC 5280 section 4.2.1.4).
pub const ANY_POLICY: &str = "2.5.29.32.0";

/// Why no accepted policy is valid through a path.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// A certificate below the anchor has no certificatePolicies.
    #[error("{subject} asserts no certificate policy, and every certificate below the trust anchor must")]
    NoPolicies {
        /// Its subject.
        subject: String,
    },
    /// A certificate maps policies; this subset does not implement it.
    #[error("{subject} maps certificate policies (policyMappings), which this verifier does not implement; refused")]
    Mappings {
        /// Its subject.
        subject: String,
    },
    /// At some certificate no policy was left valid.
    #[error("no certificate policy is valid through the path at {subject}: it asserts [{asserted}], and the CAs above it were not authorised for any of them")]
    NoneValid {
        /// The certificate where the set became empty.
        subject: String,
        /// What it asserts.
        asserted: String,
    },
    /// Policies are valid through the path, but none the anchor accepts.
    #[error(
        "the policies valid through the path ([{valid}]) include none this trust anchor accepts"
    )]
    NotAccepted {
        /// The policies valid through the path.
        valid: String,
    },
    /// A policy extension that does not parse.
    #[error("{subject} has a malformed policy extension")]
    Malformed {
        /// Its subject.
        subject: String,
    },
}

/// The state of section 6.1.2 this subset needs.
struct Valid {
    /// Explicit policies whose node is still in the tree.
    set: BTreeSet<String>,
    /// Whether an anyPolicy node is still at the tree's bottom.
    any: bool,
}

/// The policies valid through `path`, top down (the certificate the anchor
/// issued first, the end entity last; the anchor itself is not part of the
/// path), intersected with `accepted` (section 6.1.5 (g)). Empty `accepted`
/// is refused rather than read as "any".
pub fn valid_policies(
    path: &[X509Certificate<'_>],
    accepted: &[String],
) -> Result<BTreeSet<String>, PolicyError> {
    let n = path.len();
    let mut valid = Valid {
        set: BTreeSet::new(),
        any: true,
    };
    // inhibit_anyPolicy of section 6.1.2 (k): n + 1 when not inhibited.
    let mut inhibit_any = n + 1;
    for (i, cert) in path.iter().enumerate() {
        let subject = cert.subject().to_string();
        let last = i + 1 == n;
        let self_issued = cert.subject().as_raw() == cert.issuer().as_raw();
        let malformed = || PolicyError::Malformed {
            subject: subject.clone(),
        };
        if cert.policy_mappings().map_err(|_| malformed())?.is_some() {
            return Err(PolicyError::Mappings { subject });
        }
        let mut asserted: Option<BTreeSet<String>> = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CertificatePolicies(ps) => {
                    if asserted.is_some() {
                        return Err(malformed());
                    }
                    asserted = Some(ps.iter().map(|p| p.policy_id.to_id_string()).collect());
                }
                ParsedExtension::UnsupportedExtension { .. }
                | ParsedExtension::ParseError { .. }
                    if ext.oid.to_id_string() == "2.5.29.32" =>
                {
                    return Err(malformed());
                }
                _ => {}
            }
        }
        // (e): no policies, no tree; with explicit policy required, (f) fails.
        let Some(asserted) = asserted.filter(|a| !a.is_empty()) else {
            return Err(PolicyError::NoPolicies { subject });
        };
        // (d)(2): anyPolicy is processed if inhibit_anyPolicy > 0, or if
        // the certificate is a self-issued intermediate.
        let any_here = asserted.contains(ANY_POLICY) && (inhibit_any > 0 || (!last && self_issued));
        // (d)(1): each explicit policy survives if its node was in the tree,
        // or hangs under the anyPolicy node.
        let mut next: BTreeSet<String> = asserted
            .iter()
            .filter(|p| p.as_str() != ANY_POLICY)
            .filter(|p| valid.any || valid.set.contains(p.as_str()))
            .cloned()
            .collect();
        // (d)(2): anyPolicy extends every node left without a match, and
        // the anyPolicy branch itself.
        if any_here {
            next.extend(valid.set.iter().cloned());
        }
        valid = Valid {
            set: next,
            any: valid.any && any_here,
        };
        // (d)(3) pruned the childless nodes; (f) requires a non-empty tree.
        if valid.set.is_empty() && !valid.any {
            return Err(PolicyError::NoneValid {
                subject,
                asserted: asserted.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        if last {
            break;
        }
        // (h): counters step down below a non-self-issued certificate.
        if !self_issued {
            inhibit_any = inhibit_any.saturating_sub(1);
        }
        // (j): inhibitAnyPolicy.
        if let Some(ext) = cert.inhibit_anypolicy().map_err(|_| malformed())? {
            inhibit_any = inhibit_any.min(ext.value.skip_certs as usize);
        }
        // (i): requireExplicitPolicy is already in force from the start,
        // and inhibitPolicyMapping cannot matter when mappings are refused.
        cert.policy_constraints().map_err(|_| malformed())?;
    }
    if accepted.is_empty() {
        return Err(PolicyError::NotAccepted {
            valid: valid.set.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    // (g)(iii): keep what the user-initial-policy-set names; an anyPolicy
    // node stands for every one of them.
    let out: BTreeSet<String> = accepted
        .iter()
        .filter(|a| valid.any || valid.set.contains(a.as_str()))
        .cloned()
        .collect();
    if out.is_empty() {
        let mut shown: Vec<String> = valid.set.into_iter().collect();
        if valid.any {
            shown.push(ANY_POLICY.into());
        }
        return Err(PolicyError::NotAccepted {
            valid: shown.join(", "),
        });
    }
    Ok(out)
}
