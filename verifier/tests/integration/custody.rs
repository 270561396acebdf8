//! Split custody of the election key: k of n trustees, each share on the
//! trustee's own media under the trustee's own passphrase.

use sequoia_openpgp::crypto::Password;
use shared::clock::{ManualClock, UnixTime};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use verifier::custody::{self, ShareError, Trustee};

const NAMES: [&str; 3] = ["Alice Adams", "Bob Brown", "Carol Chen"];

fn pw(i: usize) -> Password {
    Password::from(format!("trustee {i}'s long passphrase").as_str())
}

struct Ceremony {
    _tmp: tempfile::TempDir,
    d: PathBuf,
    home: PathBuf,
    fpr: String,
    transcript: String,
}

impl Ceremony {
    fn media(&self, i: usize) -> PathBuf {
        self.d.join(format!("trustee-{i}"))
    }
    fn trustees(&self, which: &[usize]) -> Vec<Trustee> {
        which
            .iter()
            .map(|&i| Trustee {
                name: NAMES[i].into(),
                media: self.media(i),
            })
            .collect()
    }
    fn offer(&self, which: &[(usize, Password)]) -> Vec<(PathBuf, Password)> {
        which
            .iter()
            .map(|(i, p)| (self.media(*i), p.clone()))
            .collect()
    }
}

/// An election whose key is held 2 of 3 by Alice, Bob and Carol.
fn two_of_three() -> Ceremony {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let clock = ManualClock::new(UnixTime(1_789_000_000));
    gateway::setup::init(
        &d.join("gw"),
        "ballots.test.example/2026",
        &d.join("gw-media"),
        &clock,
    )
    .unwrap();
    for i in 0..3 {
        std::fs::create_dir(d.join(format!("trustee-{i}"))).unwrap();
    }
    let mut c = Ceremony {
        home: d.join("home"),
        d: d.clone(),
        _tmp: tmp,
        fpr: String::new(),
        transcript: String::new(),
    };
    let (fpr, transcript) = custody::init_with_trustees(
        &c.home,
        &d.join("gw-media"),
        &d.join("out"),
        &crate::ceremony::params(),
        "voter_id,edipi,ballot_style\nV-1,1234567890,s\n",
        2,
        &c.trustees(&[0, 1, 2]),
        &[pw(0), pw(1), pw(2)],
        &clock,
    )
    .unwrap();
    c.fpr = fpr;
    c.transcript = transcript;
    c
}

/// Whether `password` opens the keys: the witness key and a message
/// encrypted to the election key.
fn opens(home: &Path, password: &Password) -> bool {
    let Ok(loaded) = verifier::ceremony::load(home, password) else {
        return false;
    };
    let msg = shared::pgp::encrypt(&loaded.election_key, b"ballot").unwrap();
    shared::pgp::decrypt(&msg, &loaded.election_key, Some(password), 100)
        .is_ok_and(|p| p == b"ballot")
}

fn share_error(c: &Ceremony, offered: &[(usize, Password)]) -> ShareError {
    let e = custody::open_keys(&c.home, &c.offer(offered)).unwrap_err();
    e.downcast::<ShareError>()
        .unwrap_or_else(|e| panic!("not a share error: {e:#}"))
}

#[test]
fn any_two_of_three_trustees_open_the_key_and_one_alone_cannot() {
    let c = two_of_three();
    // Each share on its trustee's media, readable by nobody else.
    for i in 0..3 {
        let files: Vec<_> = std::fs::read_dir(c.media(i)).unwrap().flatten().collect();
        assert_eq!(files.len(), 1);
        let mode = files[0].metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // No secret key of any kind is readable on the verifier without shares.
    assert!(!opens(&c.home, &pw(0)));
    for pair in [[0, 1], [0, 2], [1, 2], [2, 0]] {
        let p = custody::open_keys(
            &c.home,
            &c.offer(&[(pair[0], pw(pair[0])), (pair[1], pw(pair[1]))]),
        )
        .unwrap();
        assert!(opens(&c.home, &p), "{pair:?}");
    }
    let e = custody::open_keys(&c.home, &c.offer(&[(1, pw(1))])).unwrap_err();
    assert!(
        format!("{e:#}").contains("1 of 3 trustees' shares were given; 2 are needed"),
        "{e:#}"
    );
    // The transcript names every trustee, the fingerprint and the checks.
    for want in [
        c.fpr.as_str(),
        "any 2 of these 3 trustees",
        "Share 1: Alice Adams",
        "Share 2: Bob Brown",
        "Share 3: Carol Chen",
        "3 sets of 2 shares each rebuilt the same secret",
        "1 shares were refused as too few",
        "Board members' signatures",
    ] {
        assert!(c.transcript.contains(want), "{want}:\n{}", c.transcript);
    }
}

#[test]
fn a_wrong_altered_twice_given_or_foreign_share_is_named() {
    let c = two_of_three();
    // A wrong passphrase.
    assert!(matches!(
        share_error(&c, &[(0, pw(1)), (1, pw(1))]),
        ShareError::DidNotOpen(f) if f.contains("trustee-0")
    ));
    // The same share twice.
    assert!(matches!(
        share_error(&c, &[(0, pw(0)), (0, pw(0))]),
        ShareError::Twice(1)
    ));
    let record = custody::read_record(&c.home.join("keys")).unwrap();
    let share_path = |i: usize| custody::find_share(&record, &c.media(i)).unwrap();
    // A bit flipped in a share file: it no longer opens.
    let original = std::fs::read(share_path(1)).unwrap();
    let mut flipped = original.clone();
    let n = flipped.len();
    flipped[n - 20] ^= 1;
    std::fs::write(share_path(1), &flipped).unwrap();
    assert!(matches!(
        share_error(&c, &[(0, pw(0)), (1, pw(1))]),
        ShareError::DidNotOpen(_)
    ));
    // A forged share for Bob's place: sealed correctly, under Bob's own
    // passphrase, naming this election, ceremony and position, but not the
    // value dealt (it would rebuild another secret).
    let forged = custody::deal(
        &custody::CustodySecret::generate(),
        &c.fpr,
        &record.ceremony,
        record.generation,
        2,
        &c.trustees(&[0, 1, 2]),
        &[pw(0), pw(1), pw(2)],
        0,
    )
    .unwrap();
    std::fs::write(share_path(1), &forged.files[1].1).unwrap();
    assert!(matches!(
        share_error(&c, &[(0, pw(0)), (1, pw(1))]),
        ShareError::Altered { share: 2, ref name, .. } if name == "Bob Brown"
    ));
    // A share from another ceremony of the same election key.
    let other = custody::deal(
        &custody::CustodySecret::generate(),
        &c.fpr,
        "00112233445566778899aabbccddeeff",
        record.generation,
        2,
        &c.trustees(&[0, 1, 2]),
        &[pw(0), pw(1), pw(2)],
        0,
    )
    .unwrap();
    std::fs::write(share_path(1), &other.files[1].1).unwrap();
    assert!(matches!(
        share_error(&c, &[(0, pw(0)), (1, pw(1))]),
        ShareError::OtherCeremony(_)
    ));
    // A share from another election's ceremony, put under this one's name.
    let elsewhere = two_of_three();
    let foreign = std::fs::read(
        custody::find_share(
            &custody::read_record(&elsewhere.home.join("keys")).unwrap(),
            &elsewhere.media(1),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(share_path(1), &foreign).unwrap();
    assert!(matches!(
        share_error(&c, &[(0, pw(0)), (1, pw(1))]),
        ShareError::OtherElection { ref found, .. } if *found == elsewhere.fpr
    ));
    // Media without a share.
    assert!(matches!(
        custody::find_share(&record, &c.d.join("gw-media")),
        Err(ShareError::NotFound(..))
    ));
    // Bob's real share back: it opens again.
    std::fs::write(share_path(1), &original).unwrap();
    custody::open_keys(&c.home, &c.offer(&[(0, pw(0)), (1, pw(1))])).unwrap();
}

#[test]
fn trustees_re_share_without_changing_the_election_key() {
    let c = two_of_three();
    let before = std::fs::read(c.home.join("keys/election.key")).unwrap();
    let old = custody::open_keys(&c.home, &c.offer(&[(0, pw(0)), (1, pw(1))])).unwrap();
    let cert = verifier::ceremony::load(&c.home, &old)
        .unwrap()
        .election_key;
    let earlier_ballot = shared::pgp::encrypt(&cert, b"sent before the change").unwrap();
    // Carol leaves; Dave joins on his own media; Alice and Bob re-share.
    let dave = c.d.join("trustee-3");
    std::fs::create_dir(&dave).unwrap();
    let mut next = c.trustees(&[0, 1]);
    next.push(Trustee {
        name: "Dave Diaz".into(),
        media: dave.clone(),
    });
    let transcript = custody::reshare(
        &c.home,
        &c.offer(&[(0, pw(0)), (1, pw(1))]),
        2,
        &next,
        &[pw(10), pw(11), pw(13)],
        "General Election",
        1_789_000_100,
    )
    .unwrap();
    assert!(transcript.contains("generation 2") && transcript.contains("Share 3: Dave Diaz"));
    let record = custody::read_record(&c.home.join("keys")).unwrap();
    assert_eq!(record.generation, 2);
    assert_eq!(record.election_fingerprint, c.fpr, "the same election key");
    assert_ne!(
        std::fs::read(c.home.join("keys/election.key")).unwrap(),
        before
    );
    assert!(!c.home.join("keys.new").exists());
    // The old custody secret opens nothing any more; Carol's old share is
    // named as replaced.
    assert!(!opens(&c.home, &old));
    assert!(matches!(
        custody::find_share(&record, &c.media(2)),
        Err(ShareError::Replaced {
            found: 1,
            current: 2,
            ..
        })
    ));
    // Bob and Dave open the same key, and a ballot sent before decrypts.
    let new = custody::open_keys(&c.home, &[(c.media(1), pw(11)), (dave.clone(), pw(13))]).unwrap();
    let loaded = verifier::ceremony::load(&c.home, &new).unwrap();
    assert_eq!(shared::pgp::fingerprint_hex(&loaded.election_key), c.fpr);
    assert_eq!(
        shared::pgp::decrypt(&earlier_ballot, &loaded.election_key, Some(&new), 100).unwrap(),
        b"sent before the change"
    );
}

#[test]
fn the_board_cannot_choose_a_custody_that_is_not_one() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    std::fs::create_dir(&m).unwrap();
    let t = |name: &str, media: &Path| Trustee {
        name: name.into(),
        media: media.to_path_buf(),
    };
    let err = |k: u8, ts: &[Trustee]| format!("{:#}", custody::check_plan(k, ts).unwrap_err());
    assert!(err(3, &[t("A", &m)]).contains("threshold must be between 1 and"));
    assert!(err(0, &[t("A", &m)]).contains("threshold"));
    let m2 = tmp.path().join("m2");
    std::fs::create_dir(&m2).unwrap();
    assert!(err(1, &[t("A", &m), t("B", &m)]).contains("the same media"));
    assert!(err(1, &[t("A", &m), t("A", &m2)]).contains("named twice"));
    assert!(err(1, &[t("A", &tmp.path().join("absent"))]).contains("does not exist"));
    custody::check_plan(2, &[t("A", &m), t("B", &m2)]).unwrap();
}
