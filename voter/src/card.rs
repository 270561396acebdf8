//! The voter's card (a CAC, a PIV card, or any PKCS #11 token) through its
//! middleware's PKCS #11 module. The private keys never leave the card: the
//! card signs the TLS handshake with its PIV Authentication key and the
//! ballot with its Digital Signature key; this program hashes, the card
//! signs the hash.
//!
//! Mechanisms are the raw ones every PIV middleware offers (`CKM_ECDSA`,
//! `CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS` over the hash), so
//! the card never needs to hash. The PIN is asked once, tried once: a wrong
//! PIN is never retried (a locked CAC is a trip to the ID card office), and
//! the tries left are read from the token's flags, which is all PKCS #11
//! tells (`CKF_USER_PIN_COUNT_LOW`, `_FINAL_TRY`, `_LOCKED`).
//!
//! Loading a module runs the middleware's code in this process: only
//! modules from the usual install places, or the one the voter names, are
//! loaded.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256, Sha384};
use shared::cms::{CmsSigner, KeyKind, SignatureError};
use shared::x509::{CardCertificate, CardRole};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;
use zeroize::Zeroizing;

/// Where card middleware installs its PKCS #11 module, looked at in order:
/// OpenSC (Debian and Ubuntu, Fedora and RHEL, from source, macOS), then
/// the DoD's ActivClient and CoolKey.
pub const MODULE_PLACES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib64/pkcs11/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib/pkcs11/opensc-pkcs11.so",
    "/usr/local/lib/opensc-pkcs11.so",
    "/Library/OpenSC/lib/opensc-pkcs11.so",
    "/usr/lib64/libacpkcs211.so",
    "/usr/lib/libacpkcs211.so",
    "/usr/local/lib/libacpkcs211.so",
    "/usr/lib64/pkcs11/libcoolkeypk11.so",
    "/usr/lib/pkcs11/libcoolkeypk11.so",
];

/// What went wrong with the card, in words for the voter.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CardError {
    /// No module in the usual places, and none named.
    #[error("no card software (PKCS #11 module) was found; install OpenSC or your card's middleware (ActivClient), or name its module with --pkcs11-module")]
    NoModule,
    /// The module could not be loaded or started.
    #[error("the card software {path} could not be started: {why}")]
    Module {
        /// The module.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// No reader with a card in it.
    #[error("no card was found: insert your CAC in the reader (and check that the reader is connected), then try again")]
    NoCard,
    /// Several cards and no choice made.
    #[error("several cards are inserted ({0}); remove all but yours, or name yours with --card")]
    SeveralCards(String),
    /// No card with the label asked for.
    #[error("no inserted card is named '{0}'")]
    NoSuchCard(String),
    /// The card went away during use.
    #[error("the card was removed or lost contact with the reader; put it back and try again (nothing was sent)")]
    Removed,
    /// The PIN is blocked; trying is pointless and the card is not touched.
    #[error("your card's PIN is locked after too many wrong tries; it cannot be used until it is unlocked at an ID card office (RAPIDS site or your unit's CAC PIN reset station). Nothing was sent")]
    Locked,
    /// A wrong PIN: tried once, never again by this program.
    #[error("wrong PIN. {0} Nothing was sent; run the command again to try another PIN")]
    WrongPin(TriesLeft),
    /// A PIN outside the card's length limits: not tried at all.
    #[error(
        "the PIN must be {min} to {max} characters long; it was not tried, so no attempt was used"
    )]
    PinLength {
        /// Shortest.
        min: usize,
        /// Longest.
        max: usize,
    },
    /// No certificate for the job.
    #[error("{0}")]
    NoCertificate(String),
    /// A certificate without its private key on the card.
    #[error("the card has the {0} certificate but no private key for it")]
    NoKey(&'static str),
    /// Anything else the middleware reported.
    #[error("the card software failed: {0}")]
    Token(String),
    /// Reading the PIN failed.
    #[error("cannot read the PIN: {0}")]
    PinInput(String),
}

/// What the token's flags say about the PIN tries left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriesLeft {
    /// The card does not say.
    Unknown,
    /// Few tries are left (`CKF_USER_PIN_COUNT_LOW`).
    Few,
    /// The next wrong PIN locks the card (`CKF_USER_PIN_FINAL_TRY`).
    Last,
}

impl std::fmt::Display for TriesLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TriesLeft::Unknown => "The card does not say how many tries are left (a CAC locks after 3 wrong PINs in a row).",
            TriesLeft::Few => "Your card says few tries are left before it locks (a CAC locks after 3 wrong PINs in a row).",
            TriesLeft::Last => "Your card says ONE try is left: one more wrong PIN locks it, and unlocking it takes a visit to an ID card office.",
        })
    }
}

fn ck(e: CkError) -> CardError {
    match e {
        CkError::Pkcs11(
            RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::TokenNotRecognized
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed,
            _,
        ) => CardError::Removed,
        CkError::Pkcs11(RvError::PinLocked, _) => CardError::Locked,
        other => CardError::Token(other.to_string()),
    }
}

/// The PKCS #11 module to load: `given`, else the first of
/// [`MODULE_PLACES`] that exists.
pub fn find_module(given: Option<&Path>) -> Result<PathBuf, CardError> {
    if let Some(p) = given {
        if !p.is_file() {
            return Err(CardError::Module {
                path: p.to_owned(),
                why: "no such file".into(),
            });
        }
        return Ok(p.to_owned());
    }
    MODULE_PLACES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(CardError::NoModule)
}

/// A PIN, wiped from memory when dropped.
pub struct Pin(Zeroizing<String>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(..)")
    }
}

impl Pin {
    /// Reads the PIN from file descriptor `fd` if given (the first line),
    /// else asks for it on the terminal without echo. Never from the
    /// command line or the environment, which other processes can read.
    pub fn read(fd: Option<u32>, prompt: &str) -> Result<Pin, CardError> {
        let line = match fd {
            Some(fd) => shared::files::read_secret_line_from_fd(fd, 256)
                .map_err(|e| CardError::PinInput(e.to_string()))?,
            None => Zeroizing::new(
                rpassword::prompt_password(prompt)
                    .map_err(|e| CardError::PinInput(e.to_string()))?,
            ),
        };
        Ok(Pin(line))
    }

    /// A PIN the voter typed into `ballot-return`'s own page (which hands
    /// it over once and keeps no copy).
    pub fn typed(pin: Zeroizing<String>) -> Pin {
        Pin(pin)
    }

    fn auth(&self) -> AuthPin {
        AuthPin::from(self.0.as_str().to_owned())
    }
}

/// A certificate object on the card.
#[derive(Debug, Clone)]
pub struct CardObject {
    /// CKA_ID, which pairs it with its private key.
    pub id: Vec<u8>,
    /// CKA_LABEL (the middleware's name for it).
    pub label: String,
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// What it is, or why it could not be read.
    pub summary: Result<CardCertificate, String>,
}

impl CardObject {
    fn role(&self) -> Option<CardRole> {
        self.summary.as_ref().ok().map(|s| s.role)
    }
}

/// The token's description.
#[derive(Debug, Clone)]
pub struct TokenSummary {
    /// The token label.
    pub label: String,
    /// Its maker.
    pub manufacturer: String,
    /// Its model.
    pub model: String,
    /// Its serial number.
    pub serial: String,
}

/// The PIN's state, from the token's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinState {
    /// `CKF_USER_PIN_LOCKED`.
    pub locked: bool,
    /// `CKF_USER_PIN_FINAL_TRY`.
    pub final_try: bool,
    /// `CKF_USER_PIN_COUNT_LOW`.
    pub count_low: bool,
    /// The PIN length limits.
    pub min_len: usize,
    /// The PIN length limits.
    pub max_len: usize,
}

/// An open card.
pub struct Card {
    ctx: Pkcs11,
    slot: Slot,
    session: Arc<Mutex<Session>>,
    /// The token.
    pub token: TokenSummary,
    /// Its certificates.
    pub certificates: Vec<CardObject>,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

fn text(a: &[u8]) -> String {
    shared::text::printable(String::from_utf8_lossy(a).trim_end()).into_owned()
}

impl Card {
    /// Loads `module`, finds the one inserted card (or the one labelled
    /// `label`) and reads its certificates. No PIN is asked.
    pub fn open(module: &Path, label: Option<&str>) -> Result<Card, CardError> {
        let load = |why: String| CardError::Module {
            path: module.to_owned(),
            why,
        };
        let ctx = Pkcs11::new(module).map_err(|e| load(e.to_string()))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| load(e.to_string()))?;
        let mut cards = Vec::new();
        for slot in ctx.get_slots_with_token().map_err(ck)? {
            let info = match ctx.get_token_info(slot) {
                Ok(i) => i,
                // A reader whose card went away between the two calls.
                Err(CkError::Pkcs11(RvError::TokenNotPresent, _)) => continue,
                Err(e) => return Err(ck(e)),
            };
            if !info.token_initialized() {
                continue;
            }
            cards.push((slot, info));
        }
        let (slot, info) = match label {
            Some(l) => cards
                .into_iter()
                .find(|(_, i)| i.label().trim_end() == l)
                .ok_or_else(|| CardError::NoSuchCard(shared::text::printable(l).into_owned()))?,
            None => {
                if cards.len() > 1 {
                    let names: Vec<String> = cards
                        .iter()
                        .map(|(_, i)| format!("'{}'", text(i.label().as_bytes())))
                        .collect();
                    return Err(CardError::SeveralCards(names.join(", ")));
                }
                cards.pop().ok_or(CardError::NoCard)?
            }
        };
        let session = ctx.open_ro_session(slot).map_err(ck)?;
        let token = TokenSummary {
            label: text(info.label().as_bytes()),
            manufacturer: text(info.manufacturer_id().as_bytes()),
            model: text(info.model().as_bytes()),
            serial: text(info.serial_number().as_bytes()),
        };
        let mut certificates = Vec::new();
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
        ];
        // A card holds four certificates; a bound keeps a faulty token from
        // making this loop (or the list of handles) long.
        let handles: Vec<ObjectHandle> = session
            .iter_objects(&template)
            .map_err(ck)?
            .take(32)
            .collect::<Result<_, _>>()
            .map_err(ck)?;
        for handle in handles {
            let attrs = session
                .get_attributes(
                    handle,
                    &[
                        AttributeType::Id,
                        AttributeType::Label,
                        AttributeType::Value,
                    ],
                )
                .map_err(ck)?;
            let (mut id, mut label, mut der) = (Vec::new(), String::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Id(v) => id = v,
                    Attribute::Label(v) => label = text(&v),
                    Attribute::Value(v) => der = v,
                    _ => {}
                }
            }
            let summary = shared::x509::card_certificate(&der).map_err(|e| e.to_string());
            certificates.push(CardObject {
                id,
                label,
                der,
                summary,
            });
        }
        Ok(Card {
            ctx,
            slot,
            session: Arc::new(Mutex::new(session)),
            token,
            certificates,
        })
    }

    /// The PIN's state now.
    pub fn pin_state(&self) -> Result<PinState, CardError> {
        let i = self.ctx.get_token_info(self.slot).map_err(ck)?;
        Ok(PinState {
            locked: i.user_pin_locked(),
            final_try: i.user_pin_final_try(),
            count_low: i.user_pin_count_low(),
            min_len: i.min_pin_length(),
            max_len: i.max_pin_length(),
        })
    }

    /// The certificate that authenticates the connection: PIV
    /// Authentication. A card with only a card-authentication certificate
    /// gets its own message.
    pub fn authentication(&self) -> Result<&CardObject, CardError> {
        if let Some(c) = self
            .certificates
            .iter()
            .find(|c| c.role() == Some(CardRole::Authentication))
        {
            return Ok(c);
        }
        if self
            .certificates
            .iter()
            .any(|c| c.role() == Some(CardRole::CardAuthentication))
        {
            return Err(CardError::NoCertificate(
                "this card has only a card-authentication certificate, which proves that a card is present but not who holds it: it cannot be used to vote. Use your CAC (with its PIV Authentication certificate)".into(),
            ));
        }
        Err(CardError::NoCertificate(
            "this card has no PIV Authentication certificate to log in with; if it is a new or renewed CAC, its certificates may not be loaded yet (ask your ID card office)".into(),
        ))
    }

    /// The certificate that signs the ballot: Digital Signature, else the
    /// PIV Authentication certificate (cards with one certificate).
    pub fn signature(&self) -> Result<&CardObject, CardError> {
        match self
            .certificates
            .iter()
            .find(|c| c.role() == Some(CardRole::Signature))
        {
            Some(c) => Ok(c),
            None => self.authentication(),
        }
    }

    /// Logs in with `pin`, once. The PIN's length is checked against the
    /// card's limits first (a PIN that cannot be right is not tried), and a
    /// locked card is not touched.
    pub fn login(&self, pin: &Pin) -> Result<(), CardError> {
        let state = self.pin_state()?;
        if state.locked {
            return Err(CardError::Locked);
        }
        let len = pin.0.chars().count();
        if len < state.min_len || (state.max_len > 0 && len > state.max_len) {
            return Err(CardError::PinLength {
                min: state.min_len,
                max: state.max_len,
            });
        }
        let session = self.session.lock().map_err(|_| poisoned())?;
        match session.login(UserType::User, Some(&pin.auth())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                let after = self.pin_state()?;
                if after.locked {
                    return Err(CardError::Locked);
                }
                Err(CardError::WrongPin(if after.final_try {
                    TriesLeft::Last
                } else if after.count_low {
                    TriesLeft::Few
                } else {
                    TriesLeft::Unknown
                }))
            }
            Err(CkError::Pkcs11(RvError::PinLenRange, _)) => Err(CardError::PinLength {
                min: state.min_len,
                max: state.max_len,
            }),
            Err(e) => Err(ck(e)),
        }
    }

    /// The private key of `cert` (after [`Self::login`]). `pin` is kept
    /// only for a key that asks for the PIN at every signature
    /// (`CKA_ALWAYS_AUTHENTICATE`, as a PIV Digital Signature key does).
    pub fn key(
        &self,
        cert: &CardObject,
        what: &'static str,
        pin: Option<Arc<Pin>>,
    ) -> Result<CardKey, CardError> {
        let summary = cert.summary.as_ref().map_err(|e| {
            CardError::NoCertificate(format!("the {what} certificate cannot be read: {e}"))
        })?;
        let kind = summary.kind.ok_or_else(|| {
            CardError::NoCertificate(format!(
                "the {what} certificate has a key this program cannot use ({})",
                summary.key
            ))
        })?;
        let session = self.session.lock().map_err(|_| poisoned())?;
        let handle = *session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(cert.id.clone()),
            ])
            .map_err(ck)?
            .first()
            .ok_or(CardError::NoKey(what))?;
        let always = session
            .get_attributes(handle, &[AttributeType::AlwaysAuthenticate])
            .map_err(ck)?
            .iter()
            .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true)));
        Ok(CardKey {
            session: self.session.clone(),
            handle,
            kind,
            pin: if always { pin } else { None },
        })
    }
}

fn poisoned() -> CardError {
    CardError::Token("the card session is unusable after an earlier failure".into())
}

/// How a signature is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// ECDSA over SHA-256 (P-256 keys).
    EcdsaSha256,
    /// ECDSA over SHA-384 (P-384 keys).
    EcdsaSha384,
    /// RSA PKCS #1 v1.5 with SHA-256 (CMS).
    RsaPkcs1Sha256,
    /// RSA-PSS with SHA-256, MGF1-SHA-256, salt 32 (TLS 1.3).
    RsaPssSha256,
    /// RSA-PSS with SHA-384, MGF1-SHA-384, salt 48 (TLS 1.3).
    RsaPssSha384,
}

/// DigestInfo for SHA-256 (RFC 8017 section 9.2 note 1), before the hash.
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// A private key on the card.
pub struct CardKey {
    session: Arc<Mutex<Session>>,
    handle: ObjectHandle,
    kind: KeyKind,
    pin: Option<Arc<Pin>>,
}

impl std::fmt::Debug for CardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardKey")
            .field("kind", &self.kind)
            .field("pin_at_each_signature", &self.pin.is_some())
            .finish_non_exhaustive()
    }
}

impl CardKey {
    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Signs `message` (hashed here) by `scheme`.
    pub fn sign(&self, scheme: Scheme, message: &[u8]) -> Result<Vec<u8>, CardError> {
        let pss = |hash: MechanismType, mgf: PkcsMgfType, len: u64| {
            Mechanism::RsaPkcsPss(PkcsPssParams {
                hash_alg: hash,
                mgf,
                s_len: len.into(),
            })
        };
        match (scheme, self.kind) {
            (Scheme::EcdsaSha256, KeyKind::P256) => {
                let fixed = self.raw(&Mechanism::Ecdsa, &Sha256::digest(message))?;
                der(&fixed)
            }
            (Scheme::EcdsaSha384, KeyKind::P384) => {
                let fixed = self.raw(&Mechanism::Ecdsa, &Sha384::digest(message))?;
                der(&fixed)
            }
            (Scheme::RsaPkcs1Sha256, KeyKind::Rsa) => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(&Sha256::digest(message));
                self.raw(&Mechanism::RsaPkcs, &info)
            }
            (Scheme::RsaPssSha256, KeyKind::Rsa) => self.raw(
                &pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32),
                &Sha256::digest(message),
            ),
            (Scheme::RsaPssSha384, KeyKind::Rsa) => self.raw(
                &pss(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
                &Sha384::digest(message),
            ),
            (s, k) => Err(CardError::Token(format!(
                "a {k:?} key cannot sign with {s:?}"
            ))),
        }
    }

    fn raw(&self, mechanism: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>, CardError> {
        let session = self.session.lock().map_err(|_| poisoned())?;
        match &self.pin {
            None => session.sign(mechanism, self.handle, data).map_err(ck),
            Some(pin) => {
                // PKCS #11 section 5.1: the context-specific login comes
                // between C_SignInit and the signature. cryptoki's one-part
                // `sign` starts its own operation, so the parts are used
                // (middleware such as OpenSC buffers raw mechanisms).
                session.sign_init(mechanism, self.handle).map_err(ck)?;
                session
                    .login(UserType::ContextSpecific, Some(&pin.auth()))
                    .map_err(ck)?;
                session.sign_update(data).map_err(ck)?;
                session.sign_final().map_err(ck)
            }
        }
    }
}

fn der(fixed: &[u8]) -> Result<Vec<u8>, CardError> {
    shared::cms::ecdsa_fixed_to_der(fixed).map_err(|e| CardError::Token(e.to_string()))
}

impl CmsSigner for CardKey {
    fn kind(&self) -> KeyKind {
        self.kind
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let scheme = match self.kind {
            KeyKind::P256 => Scheme::EcdsaSha256,
            KeyKind::P384 => Scheme::EcdsaSha384,
            KeyKind::Rsa => Scheme::RsaPkcs1Sha256,
        };
        self.sign(scheme, message)
            .map_err(|e| SignatureError::Signer(e.to_string()))
    }
}

/// The card's key as rustls signs TLS 1.3 handshakes with it.
#[derive(Debug)]
pub struct TlsKey(pub Arc<CardKey>);

#[derive(Debug)]
struct TlsSigner {
    key: Arc<CardKey>,
    scheme: rustls::SignatureScheme,
    how: Scheme,
}

impl rustls::sign::SigningKey for TlsKey {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        use rustls::SignatureScheme as S;
        // TLS 1.3 signs with PSS only for RSA (RFC 8446 section 4.2.3).
        let ours: &[(S, Scheme)] = match self.0.kind {
            KeyKind::P256 => &[(S::ECDSA_NISTP256_SHA256, Scheme::EcdsaSha256)],
            KeyKind::P384 => &[(S::ECDSA_NISTP384_SHA384, Scheme::EcdsaSha384)],
            KeyKind::Rsa => &[
                (S::RSA_PSS_SHA256, Scheme::RsaPssSha256),
                (S::RSA_PSS_SHA384, Scheme::RsaPssSha384),
            ],
        };
        ours.iter()
            .find(|(s, _)| offered.contains(s))
            .map(|(scheme, how)| {
                Box::new(TlsSigner {
                    key: self.0.clone(),
                    scheme: *scheme,
                    how: *how,
                }) as Box<dyn rustls::sign::Signer>
            })
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        match self.0.kind {
            KeyKind::P256 | KeyKind::P384 => rustls::SignatureAlgorithm::ECDSA,
            KeyKind::Rsa => rustls::SignatureAlgorithm::RSA,
        }
    }
}

impl rustls::sign::Signer for TlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.key
            .sign(self.how, message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        self.scheme
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    #[test]
    fn each_card_failure_gets_its_own_plain_message() {
        let rv = |e| CkError::Pkcs11(e, Function::Sign);
        for gone in [
            RvError::TokenNotPresent,
            RvError::DeviceRemoved,
            RvError::SessionHandleInvalid,
        ] {
            assert!(matches!(ck(rv(gone)), CardError::Removed));
        }
        assert!(matches!(ck(rv(RvError::PinLocked)), CardError::Locked));
        assert!(matches!(ck(rv(RvError::GeneralError)), CardError::Token(_)));
        let words = |e: CardError| e.to_string();
        assert!(words(CardError::Removed).contains("card was removed"));
        assert!(words(CardError::Locked).contains("ID card office"));
        assert!(words(CardError::WrongPin(TriesLeft::Last)).contains("ONE try is left"));
        assert!(words(CardError::WrongPin(TriesLeft::Few)).contains("few tries are left"));
        assert!(words(CardError::NoCard).contains("insert your CAC"));
    }

    #[test]
    fn a_pin_is_never_printed() {
        let pin = Pin(Zeroizing::new("123456".into()));
        assert_eq!(format!("{pin:?}"), "Pin(..)");
    }
}
