//! Witnesses: the C2SP tlog-witness request body (<https://c2sp.org/tlog-witness>)
//! and the rule that makes a checkpoint the county's word: cosigned by a
//! quorum of the witnesses the signed election manifest names.
//!
//! A witness cosigns a checkpoint only if it is consistent with every
//! checkpoint of the same log it cosigned before, and stamps its cosignature
//! with its own clock (C2SP tlog-cosignature). So a checkpoint of size N
//! cosigned by a quorum proves, as long as one witness of the quorum is
//! honest, that the log had those N leaves, and no others in their place, by
//! the quorum's time: the latest of the `quorum` earliest cosignature times.
//!
//! Specification: `docs/spec/witnesses.md`.

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::clock::UnixTime;
use crate::merkle::{Hash, EMPTY_ROOT};
use crate::note::{Note, NoteError, NoteVerifier, TYPE_COSIGNATURE};
use base64::prelude::*;
use thiserror::Error;

/// "The client MUST NOT send more than 63 consistency proof lines."
pub const MAX_PROOF_LINES: usize = 63;
/// The largest add-checkpoint body read: 63 proof lines and a checkpoint.
pub const MAX_REQUEST: usize = 64 * 45 + crate::note::MAX_NOTE_LEN;
/// The most witnesses a manifest names.
pub const MAX_WITNESSES: usize = 16;
/// The media type of a 409 answer's body.
pub const SIZE_MEDIA_TYPE: &str = "text/x.tlog.size";

/// A malformed add-checkpoint request (the witness answers 400).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed add-checkpoint request: {0}")]
pub struct RequestError(pub &'static str);

/// The body of `POST <prefix>/add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness holds.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint (a signed note).
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size).into_bytes();
        for h in &self.proof {
            out.extend_from_slice(BASE64_STANDARD.encode(h).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Reads a request body; the checkpoint itself is checked by the caller.
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        if body.len() > MAX_REQUEST {
            return Err(RequestError("the body is too large"));
        }
        let mut rest = body;
        let mut line = || -> Result<&[u8], RequestError> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or(RequestError("a line does not end with a newline"))?;
            let (l, r) = rest.split_at(end);
            rest = r.get(1..).unwrap_or_default();
            Ok(l)
        };
        let first = line()?;
        let size = first
            .strip_prefix(b"old ")
            .ok_or(RequestError("the first line is not 'old <size>'"))?;
        let old_size = parse_decimal(size).ok_or(RequestError("the old size is not a decimal"))?;
        let mut proof = Vec::new();
        loop {
            let l = line()?;
            if l.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(RequestError("more than 63 consistency proof lines"));
            }
            let h: Hash = BASE64_STANDARD
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or(RequestError("a proof line is not a base64 SHA-256 hash"))?;
            proof.push(h);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: rest.to_vec(),
        })
    }
}

/// ASCII decimal without leading zeroes ("0" itself is allowed).
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty()
        || (s.len() > 1 && s.first() == Some(&b'0'))
        || !s.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The body of a 409 answer: the witness's size.
pub fn parse_size_body(body: &[u8]) -> Option<u64> {
    parse_decimal(body.strip_suffix(b"\n")?)
}

/// Why a checkpoint is not the county's word.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// The log's own signature or the checkpoint body is wrong.
    #[error("the checkpoint is not the log's: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A line from a known witness does not verify (the note is refused).
    #[error("a cosignature by {0} does not verify")]
    BadCosignature(String),
    /// Fewer cosignatures than the quorum.
    #[error("the checkpoint is cosigned by {have} of the election's witnesses; {need} are needed")]
    ShortOfQuorum {
        /// Valid cosignatures from the manifest's witnesses.
        have: usize,
        /// The manifest's quorum.
        need: usize,
    },
    /// A size-0 checkpoint whose root is not the empty tree's.
    #[error("an empty log's checkpoint must have the empty tree's root")]
    BadEmptyRoot,
}

/// A checkpoint cosigned by a quorum.
#[derive(Debug, Clone)]
pub struct Witnessed {
    /// The checkpoint, with every signature line it came with.
    pub checkpoint: SignedCheckpoint,
    /// Each manifest witness that cosigned, with its cosignature time.
    pub cosigners: Vec<(String, UnixTime)>,
    /// The quorum's time: by then a quorum had seen the checkpoint.
    pub time: UnixTime,
}

/// The witnesses a signed manifest names, and how many must agree.
#[derive(Debug, Clone)]
pub struct WitnessPolicy {
    /// The log's key.
    pub log_key: NoteVerifier,
    /// The witnesses' cosigning keys.
    pub witnesses: Vec<NoteVerifier>,
    /// How many must cosign.
    pub quorum: usize,
}

impl WitnessPolicy {
    /// Verifies a checkpoint and its cosignatures: the log's signature, then
    /// every line from a named witness (one that fails refuses the note, as
    /// C2SP signed-note advises), then the quorum.
    pub fn verify(&self, note: &[u8]) -> Result<Witnessed, QuorumError> {
        let checkpoint = SignedCheckpoint::verify(note, &self.log_key)?;
        if checkpoint.checkpoint.size == 0 && checkpoint.checkpoint.root != EMPTY_ROOT {
            return Err(QuorumError::BadEmptyRoot);
        }
        let mut cosigners = Vec::new();
        for w in &self.witnesses {
            match checkpoint.note.verify(w) {
                Ok(Some(t)) => cosigners.push((w.name().to_owned(), UnixTime(t))),
                Ok(None) => return Err(QuorumError::BadCosignature(w.name().to_owned())),
                Err(NoteError::NotSigned(_)) => {}
                Err(_) => return Err(QuorumError::BadCosignature(w.name().to_owned())),
            }
        }
        let mut times: Vec<UnixTime> = cosigners.iter().map(|(_, t)| *t).collect();
        times.sort();
        let time = match (self.quorum, times.get(self.quorum.wrapping_sub(1))) {
            (1.., Some(t)) => *t,
            _ => {
                return Err(QuorumError::ShortOfQuorum {
                    have: cosigners.len(),
                    need: self.quorum,
                })
            }
        };
        Ok(Witnessed {
            checkpoint,
            cosigners,
            time,
        })
    }

    /// Adds a witness's add-checkpoint answer (signature lines) to a signed
    /// checkpoint, keeping only lines from `witness` that verify. Returns
    /// the checkpoint with that cosignature and its time.
    pub fn attach(
        checkpoint: &Note,
        witness: &NoteVerifier,
        answer: &[u8],
    ) -> Result<(Note, UnixTime), NoteError> {
        if witness.sig_type() != TYPE_COSIGNATURE {
            return Err(NoteError::MalformedKey("not a cosigner key"));
        }
        let mut text = checkpoint.to_text().into_bytes();
        text.extend_from_slice(answer);
        let joined = Note::parse(&text)?;
        let t = joined
            .verify(witness)?
            .ok_or(NoteError::MalformedKey("not a cosigner key"))?;
        Ok((checkpoint.with_signature_of(&joined, witness)?, UnixTime(t)))
    }
}

/// The times a log's leaves were witnessed by: for each checkpoint a quorum
/// cosigned, its size and the quorum's time. The verifier's time rule
/// (`docs/spec/witnesses.md`, "The time rule") reads only these, never a
/// leaf's `received_at`.
#[derive(Debug, Clone, Default)]
pub struct WitnessedTimes {
    /// (size, quorum time), by size.
    points: Vec<(u64, UnixTime)>,
    /// For each position in `points`, the earliest time from there on.
    earliest_from: Vec<UnixTime>,
}

/// What became of the closing checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// A quorum cosigned a checkpoint of this size between the deadline and
    /// the deadline plus the grace.
    Witnessed {
        /// Its size.
        size: u64,
        /// The quorum's time.
        time: UnixTime,
    },
    /// Checkpoints were cosigned after the deadline, but none within the
    /// grace: the first such was at `time`.
    Late {
        /// The quorum's time of the first checkpoint cosigned after the
        /// deadline.
        time: UnixTime,
    },
    /// No checkpoint was cosigned at or after the deadline.
    Missing,
}

impl WitnessedTimes {
    /// From (size, quorum time) pairs in any order.
    pub fn new(points: impl IntoIterator<Item = (u64, UnixTime)>) -> Self {
        let mut points: Vec<(u64, UnixTime)> = points.into_iter().collect();
        points.sort();
        let mut earliest_from = vec![UnixTime(u64::MAX); points.len()];
        let mut min = UnixTime(u64::MAX);
        for (i, (_, t)) in points.iter().enumerate().rev() {
            min = min.min(*t);
            if let Some(slot) = earliest_from.get_mut(i) {
                *slot = min;
            }
        }
        WitnessedTimes {
            points,
            earliest_from,
        }
    }

    /// How many witnessed checkpoints there are.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The earliest time a quorum cosigned a checkpoint that includes leaf
    /// `index` (one of size greater than `index`): the leaf existed by then.
    /// `None` when no witnessed checkpoint includes it.
    pub fn witnessed_by(&self, index: u64) -> Option<UnixTime> {
        let from = self.points.partition_point(|(size, _)| *size <= index);
        self.earliest_from.get(from).copied()
    }

    /// The size of the largest checkpoint a quorum cosigned no later than
    /// `bound` (0 if none): the leaves below it existed by `bound`.
    pub fn size_by(&self, bound: UnixTime) -> u64 {
        self.points
            .iter()
            .filter(|(_, t)| *t <= bound)
            .map(|(size, _)| *size)
            .max()
            .unwrap_or(0)
    }

    /// The closing checkpoint: the largest checkpoint a quorum cosigned at
    /// or after `closes_at` and no later than `bound` (the deadline plus the
    /// grace).
    pub fn closing(&self, closes_at: UnixTime, bound: UnixTime) -> Closing {
        let within = self
            .points
            .iter()
            .filter(|(_, t)| *t >= closes_at && *t <= bound)
            .max();
        if let Some((size, time)) = within {
            return Closing::Witnessed {
                size: *size,
                time: *time,
            };
        }
        match self
            .points
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| *t >= closes_at)
            .min()
        {
            Some(time) => Closing::Late { time },
            None => Closing::Missing,
        }
    }
}

/// Which of a run of witnessed checkpoints (their quorum times, oldest
/// first) a bundle carries when there are more than `max` (at least 4):
/// exactly `max` of them: the first and the last, the last cosigned no
/// later than `bound` and the first cosigned at or after `closes_at` (the
/// closing checkpoint's neighbours, which the time rule's outcome depends
/// on), the rest spread evenly over the run's time span, so a leaf's
/// witnessed time is later than with every checkpoint by at most about
/// span / max, and any slot left over (times bunched together) spread
/// evenly over the rows. Returns positions, ascending.
pub fn thin(times: &[UnixTime], max: usize, closes_at: UnixTime, bound: UnixTime) -> Vec<usize> {
    let n = times.len();
    if n <= max {
        return (0..n).collect();
    }
    let mut keep = std::collections::BTreeSet::new();
    keep.insert(0);
    keep.insert(n - 1);
    if let Some(i) = times.iter().rposition(|t| *t <= bound) {
        keep.insert(i);
    }
    if let Some(i) = times.iter().position(|t| *t >= closes_at) {
        keep.insert(i);
    }
    let slots = max.saturating_sub(keep.len());
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return Vec::new();
    };
    let (first, last) = (first.0, last.0);
    let span = last.saturating_sub(first);
    let mut at = 0usize;
    for k in 1..=slots as u64 {
        let target = first.saturating_add(
            u64::try_from(u128::from(span) * u128::from(k) / (slots as u128 + 1)).unwrap_or(span),
        );
        while times.get(at).is_some_and(|t| t.0 < target) {
            at += 1;
        }
        if at < n {
            keep.insert(at);
        }
        if keep.len() >= max {
            break;
        }
    }
    // Times that bunch up (a busy hour after a quiet day) leave slots
    // unused: spend them evenly over the rows not kept yet.
    let free = max.saturating_sub(keep.len());
    if free > 0 {
        let rest: Vec<usize> = (0..n).filter(|i| !keep.contains(i)).collect();
        for k in 0..free {
            if let Some(i) = rest.get(k * rest.len() / free) {
                keep.insert(*i);
            }
        }
    }
    keep.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::note::{NoteSigner, TYPE_ED25519};

    const ORIGIN: &str = "ballots.example.gov/2026-general";

    fn log() -> NoteSigner {
        NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap()
    }

    fn witnesses(n: usize) -> Vec<NoteSigner> {
        (0..n)
            .map(|i| NoteSigner::generate(&format!("w{i}.example/w"), TYPE_COSIGNATURE).unwrap())
            .collect()
    }

    #[test]
    fn a_request_round_trips_and_junk_is_refused() {
        let r = AddCheckpoint {
            old_size: 20852014,
            proof: vec![[1; 32], [2; 32]],
            checkpoint: b"example.com/log\n3\nAAAA\n\n- sig\n".to_vec(),
        };
        let bytes = r.to_bytes();
        assert!(bytes.starts_with(b"old 20852014\nAQEB"));
        assert_eq!(AddCheckpoint::parse(&bytes).unwrap(), r);
        let no_proof = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: b"x".to_vec(),
        };
        assert_eq!(no_proof.to_bytes(), b"old 0\n\nx");
        for bad in [
            &b"old 01\n\nx"[..],
            b"old -1\n\nx",
            b"olde 1\n\nx",
            b"old 1",
            b"old 1\nAQEB\n\nx",
            b"old 1\n",
            b"old 99999999999999999999999\n\nx",
        ] {
            assert!(AddCheckpoint::parse(bad).is_err(), "{bad:?}");
        }
        let mut many = b"old 1\n".to_vec();
        for _ in 0..64 {
            many.extend_from_slice(BASE64_STANDARD.encode([0u8; 32]).as_bytes());
            many.push(b'\n');
        }
        many.extend_from_slice(b"\nx");
        assert!(AddCheckpoint::parse(&many).is_err());
        assert_eq!(parse_size_body(b"12\n"), Some(12));
        assert_eq!(parse_size_body(b"12"), None);
    }

    #[test]
    fn a_quorum_and_its_time() {
        let log = log();
        let ws = witnesses(3);
        let policy = WitnessPolicy {
            log_key: log.verifier(),
            witnesses: ws.iter().map(NoteSigner::verifier).collect(),
            quorum: 2,
        };
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: 5,
            root: [9; 32],
            extensions: vec![],
        }
        .sign(&log)
        .unwrap();
        let note = Note::parse(cp.as_bytes()).unwrap();
        let e = policy.verify(cp.as_bytes()).unwrap_err();
        assert!(
            matches!(e, QuorumError::ShortOfQuorum { have: 0, need: 2 }),
            "{e}"
        );
        let one = Note::parse(ws[0].cosign(&note, 300).unwrap().as_bytes()).unwrap();
        let e = policy.verify(one.to_text().as_bytes()).unwrap_err();
        assert!(
            matches!(e, QuorumError::ShortOfQuorum { have: 1, need: 2 }),
            "{e}"
        );
        // A witness's answer is its signature lines; attached, they count.
        let answer = ws[2].cosign(&note, 100).unwrap();
        let answer = answer.strip_prefix(&note.to_text()).unwrap();
        let (two, t) = WitnessPolicy::attach(&one, &ws[2].verifier(), answer.as_bytes()).unwrap();
        assert_eq!(t, UnixTime(100));
        let three = Note::parse(ws[1].cosign(&two, 200).unwrap().as_bytes()).unwrap();
        let w = policy.verify(two.to_text().as_bytes()).unwrap();
        assert_eq!(w.time, UnixTime(300), "the later of the two");
        let w = policy.verify(three.to_text().as_bytes()).unwrap();
        assert_eq!(w.time, UnixTime(200), "the second earliest of three");
        assert_eq!(w.cosigners.len(), 3);
        // An answer from another key is not attached.
        assert!(WitnessPolicy::attach(&one, &ws[1].verifier(), answer.as_bytes()).is_err());
        // A cosignature from a stranger does not count.
        let stranger = witnesses(1).remove(0);
        let s = Note::parse(stranger.cosign(&one, 5).unwrap().as_bytes()).unwrap();
        assert!(policy.verify(s.to_text().as_bytes()).is_err());
        // A known witness's line that fails refuses the whole note.
        let mut forged = three.to_text();
        let at = forged.rfind('\n').unwrap() - 3;
        forged.replace_range(
            at..at + 1,
            if &forged[at..at + 1] == "A" { "B" } else { "A" },
        );
        assert!(policy.verify(forged.as_bytes()).is_err());
        // Another log's checkpoint is not this log's.
        let other = log_other();
        assert!(matches!(
            policy.verify(other.as_bytes()),
            Err(QuorumError::Checkpoint(_))
        ));
    }

    fn log_other() -> String {
        let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        Checkpoint {
            origin: ORIGIN.into(),
            size: 1,
            root: [1; 32],
            extensions: vec![],
        }
        .sign(&key)
        .unwrap()
    }

    #[test]
    fn a_leaf_is_witnessed_by_the_first_checkpoint_that_includes_it() {
        let t = |x| UnixTime(x);
        let w = WitnessedTimes::new([(3, t(100)), (5, t(200)), (5, t(150)), (9, t(400))]);
        assert_eq!(w.witnessed_by(0), Some(t(100)));
        assert_eq!(w.witnessed_by(2), Some(t(100)));
        assert_eq!(w.witnessed_by(3), Some(t(150)));
        assert_eq!(w.witnessed_by(4), Some(t(150)));
        assert_eq!(w.witnessed_by(5), Some(t(400)));
        assert_eq!(w.witnessed_by(8), Some(t(400)));
        assert_eq!(w.witnessed_by(9), None);
        assert_eq!(w.size_by(t(99)), 0);
        assert_eq!(w.size_by(t(150)), 5);
        assert_eq!(w.size_by(t(399)), 5);
        assert_eq!(w.size_by(t(400)), 9);
        // Deadline 180, grace 60: the re-cosigned size 5 at 200 closes.
        assert_eq!(
            w.closing(t(180), t(240)),
            Closing::Witnessed {
                size: 5,
                time: t(200)
            }
        );
        assert_eq!(w.closing(t(300), t(360)), Closing::Late { time: t(400) });
        assert_eq!(w.closing(t(500), t(560)), Closing::Missing);
        assert!(WitnessedTimes::new([]).witnessed_by(0).is_none());
    }

    #[test]
    fn thinning_keeps_the_ends_the_closing_neighbours_and_spreads_the_rest() {
        let times: Vec<UnixTime> = (0..10_000).map(|i| UnixTime(1000 + 3 * i)).collect();
        assert_eq!(thin(&times[..64], 64, UnixTime(0), UnixTime(0)).len(), 64);
        let (closes, bound) = (UnixTime(1000 + 3 * 7777 + 1), UnixTime(1000 + 3 * 7790 + 2));
        let kept = thin(&times, 64, closes, bound);
        assert!(kept.len() <= 64, "{}", kept.len());
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        for must in [0, 9999, 7778, 7790] {
            assert!(kept.contains(&must), "{must} dropped");
        }
        // Evenly spread: no gap much wider than the span over the slots.
        let widest = kept.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(widest <= 10_000 / 58 + 2, "gap of {widest}");
        // Times bunched together (one early row, then 200 within minutes):
        // every slot is still used.
        let mut bunched = vec![UnixTime(1000)];
        bunched.extend((0..200).map(|i| UnixTime(1_000_000 + i)));
        let kept = thin(&bunched, 64, UnixTime(u64::MAX), UnixTime(u64::MAX));
        assert_eq!(kept.len(), 64);
        assert!(kept.contains(&0) && kept.contains(&200));
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
    }
}
