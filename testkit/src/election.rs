//! An election set up the way a county and its gateway operator do it: the
//! gateway's `init`, the verifier's key ceremony (a passphrase-protected
//! post-quantum election key, the witness key, the signed manifest and
//! roster), and the gateway's `import-setup` pinned by the fingerprint.

use sequoia_openpgp::crypto::Password;
use sequoia_openpgp::Cert;
use shared::clock::{ManualClock, UnixTime};
use shared::manifest::{ElectionManifest, MediaRule};
use shared::note::NoteSigner;
use std::path::{Path, PathBuf};

/// The passphrase of every test ceremony's election key.
pub const PASSPHRASE: &str = "a test passphrase, not a secret";

/// What the county decides at its ceremony.
#[derive(Debug, Clone)]
pub struct ElectionSpec {
    /// The election id.
    pub election_id: String,
    /// The title.
    pub title: String,
    /// The jurisdiction.
    pub jurisdiction: String,
    /// The log origin the gateway is set up with.
    pub origin: String,
    /// When ballots are first accepted.
    pub opens_at: UnixTime,
    /// The deadline.
    pub closes_at: UnixTime,
    /// The time the ceremony's clock starts at.
    pub now: UnixTime,
    /// The voter declaration.
    pub declaration: String,
    /// The largest PDF ballot.
    pub max_ballot: u32,
    /// The county's roster CSV.
    pub roster_csv: String,
    /// The witness key's name.
    pub witness_name: String,
    /// The observers' witnesses the manifest names.
    pub witnesses: Vec<shared::manifest::ManifestWitness>,
    /// How many must cosign.
    pub witness_quorum: u8,
    /// The grace after the deadline for the closing checkpoint.
    pub grace_seconds: u32,
    /// The secret keys of the witnesses when they are stand-ins (none when
    /// real observers' witnesses are named).
    pub stand_in_keys: Vec<String>,
    /// The trust anchors the manifest pins (a throwaway root unless set:
    /// a gateway configured with other anchors refuses the election).
    pub anchors: Vec<shared::pki::Anchor>,
}

/// The anchors the test gateway's configuration names
/// ([`crate::server::config`]): the development DoD root (EDIPI, the DoD
/// mediumHardware policies) and the development county voter CA.
pub fn dev_anchors(pki: &devpki::DevPki) -> Vec<shared::pki::Anchor> {
    vec![dod_anchor(pki), county_anchor(pki)]
}

/// The development DoD root as the gateway's configuration names it.
pub fn dod_anchor(pki: &devpki::DevPki) -> shared::pki::Anchor {
    shared::pki::Anchor {
        name: "Test DoD Root CA 3".into(),
        cert_der: pki.root.issued.cert_der.clone(),
        policy: shared::x509::IdentityPolicy::dod_default(),
    }
}

/// The development county voter CA as the gateway's configuration names it.
pub fn county_anchor(pki: &devpki::DevPki) -> shared::pki::Anchor {
    shared::pki::Anchor {
        name: "Test County Voter CA".into(),
        cert_der: pki.county_ca.issued.cert_der.clone(),
        policy: shared::x509::IdentityPolicy {
            accepted_policies: vec![devpki::oid::DEV_COUNTY_VOTER.to_string()],
            rule: shared::x509::IdentityRule::UriPrefix("urn:test-county:voter:".into()),
        },
    }
}

/// A root no voter chains to, for elections whose tests never validate a
/// voter certificate (made once per test process).
pub fn throwaway_anchor() -> shared::pki::Anchor {
    static ROOT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let der = ROOT.get_or_init(|| {
        let mut spec = devpki::CertSpec::leaf(
            "CN=Throwaway Test Root",
            devpki::KeyAlg::P256,
            crate::now(),
            30,
        );
        spec.ca = Some(None);
        devpki::Ca::new_root(&spec).unwrap().issued.cert_der
    });
    shared::pki::Anchor {
        name: "Throwaway Test Root".into(),
        cert_der: der.clone(),
        policy: shared::x509::IdentityPolicy::dod_default(),
    }
}

impl ElectionSpec {
    /// An election open from half an hour ago (after the development CRLs
    /// were issued) for five days, with `roster_csv` as its roster.
    pub fn new(roster_csv: &str) -> Self {
        let t = UnixTime(crate::now().unix_timestamp() as u64);
        let (witnesses, stand_in_keys) = crate::observers::Observers::stand_ins(3);
        ElectionSpec {
            election_id: "2026-general".into(),
            title: "General Election, November 3, 2026".into(),
            jurisdiction: "Test County".into(),
            origin: "ballots.test-county.example/2026-general".into(),
            opens_at: UnixTime(t.0 - 1800),
            closes_at: UnixTime(t.0 + 5 * 86_400),
            now: t,
            declaration: "I swear or affirm that I am eligible to vote in this election.".into(),
            max_ballot: 1 << 20,
            roster_csv: roster_csv.into(),
            witness_name: "county.test.example/witness".into(),
            witnesses,
            witness_quorum: 2,
            grace_seconds: 600,
            stand_in_keys,
            anchors: vec![throwaway_anchor()],
        }
    }

    /// The trust anchors the manifest pins.
    pub fn anchors(mut self, anchors: Vec<shared::pki::Anchor>) -> Self {
        self.anchors = anchors;
        self
    }

    /// The observers' witnesses (running ones, from [`crate::observers`]).
    pub fn observers(mut self, observers: &crate::observers::Observers) -> Self {
        self.witnesses = observers.witnesses.clone();
        self.witness_quorum = observers.quorum;
        self.stand_in_keys.clear();
        self
    }

    /// The grace period after the deadline.
    pub fn grace(mut self, seconds: u32) -> Self {
        self.grace_seconds = seconds;
        self
    }

    /// The voting window, and the clock starts ten seconds after it opens.
    pub fn window(mut self, opens_at: u64, closes_at: u64) -> Self {
        self.opens_at = UnixTime(opens_at);
        self.closes_at = UnixTime(closes_at);
        self.now = UnixTime(opens_at + 10);
        self
    }

    /// The largest PDF ballot.
    pub fn max_ballot(mut self, bytes: u32) -> Self {
        self.max_ballot = bytes;
        self
    }

    /// The voter declaration.
    pub fn declaration(mut self, text: &str) -> Self {
        self.declaration = text.into();
        self
    }

    /// The log origin.
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = origin.into();
        self
    }

    /// The ceremony parameters `ballot-verifier init` takes.
    pub fn params(&self) -> verifier::ceremony::ElectionParams {
        verifier::ceremony::ElectionParams {
            election_id: self.election_id.clone(),
            title: self.title.clone(),
            jurisdiction: self.jurisdiction.clone(),
            opens_at: self.opens_at,
            closes_at: self.closes_at,
            declaration: self.declaration.clone(),
            accepted_media: vec![MediaRule {
                media_type: shared::ballot::MEDIA_PDF.into(),
                max_size: self.max_ballot,
            }],
            witness_name: self.witness_name.clone(),
            witnesses: self.witnesses.clone(),
            witness_quorum: self.witness_quorum,
            grace_seconds: self.grace_seconds,
            anchors: self.anchors.clone(),
        }
    }

    /// The verifier's ceremony for the gateway keys on `gateway_media`:
    /// the election and witness keys in `home`, the signed manifest and
    /// roster on `out_media`. Returns the election key fingerprint.
    pub fn verifier_ceremony(
        &self,
        home: &Path,
        gateway_media: &Path,
        out_media: &Path,
        clock: &ManualClock,
    ) -> String {
        verifier::ceremony::init(
            home,
            gateway_media,
            out_media,
            &self.params(),
            &self.roster_csv,
            &Password::from(PASSPHRASE),
            clock,
        )
        .unwrap()
    }

    /// Runs the whole setup under `root`: `gw/` (the gateway's data
    /// folder), `gw-media/` (its public keys), `home/` (the verifier),
    /// `media/` (the signed manifest and roster).
    pub fn set_up(&self, root: &Path) -> County {
        let clock = ManualClock::new(self.now);
        let (gw, gw_media) = (root.join("gw"), root.join("gw-media"));
        gateway::setup::init(&gw, &self.origin, &gw_media, &clock).unwrap();
        let c = County::for_gateway(self, root, &gw, &gw_media);
        gateway::setup::import_setup(&c.gw, &self.anchors, &c.media, &c.fpr, &c.clock).unwrap();
        c
    }
}

/// A county after its ceremony.
#[derive(Debug)]
pub struct County {
    /// The gateway's data folder.
    pub gw: PathBuf,
    /// The gateway's public keys, for the verifier.
    pub gw_media: PathBuf,
    /// The verifier's home.
    pub home: PathBuf,
    /// The signed manifest and roster, for the gateway.
    pub media: PathBuf,
    /// The clock everything was set up with.
    pub clock: ManualClock,
    /// The election key fingerprint.
    pub fpr: String,
    /// The election key's passphrase.
    pub password: Password,
    /// The manifest, as the gateway serves it.
    pub manifest: ElectionManifest,
    /// The election key, unlocked (for tests that sign as the county).
    pub election_key: Cert,
    /// The verifier's witness key.
    pub witness: NoteSigner,
    /// The stand-in witnesses' secret keys (see [`ElectionSpec`]).
    pub stand_in_keys: Vec<String>,
}

impl County {
    /// Reads what the ceremony left in `home` and `media`.
    fn after_ceremony(
        gw: PathBuf,
        gw_media: PathBuf,
        home: PathBuf,
        media: PathBuf,
        clock: ManualClock,
        fpr: String,
        stand_in_keys: Vec<String>,
    ) -> Self {
        let password = Password::from(PASSPHRASE);
        // The manifest the ceremony stored is the one it signed onto the
        // media for the gateway.
        let loaded = verifier::ceremony::load(&home, &password).unwrap();
        County {
            election_key: shared::pgp::unlock(&loaded.election_key, &password).unwrap(),
            witness: loaded.witness,
            gw,
            gw_media,
            home,
            media,
            clock,
            fpr,
            password,
            manifest: loaded.manifest,
            stand_in_keys,
        }
    }

    /// The verifier's ceremony (in `root/home`, writing `root/media`) for
    /// a gateway whose data folder and media were made elsewhere (for
    /// example by the `ballot-gateway` binary).
    pub fn for_gateway(spec: &ElectionSpec, root: &Path, gw: &Path, gw_media: &Path) -> Self {
        let clock = ManualClock::new(spec.now);
        let (home, media) = (root.join("home"), root.join("media"));
        let fpr = spec.verifier_ceremony(&home, gw_media, &media, &clock);
        County::after_ceremony(
            gw.into(),
            gw_media.into(),
            home,
            media,
            clock,
            fpr,
            spec.stand_in_keys.clone(),
        )
    }
}
