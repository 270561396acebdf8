//! The card and the sending, for the page: what the card says (no PIN
//! asked), then, with the PIN the voter typed, the login (its answer comes
//! back at once: a wrong PIN is told with the tries left), and the signing,
//! sealing and upload on a thread of their own, whose progress the page
//! reads.

use super::{flow, json_answer, said, Said, Shared};
use crate::card::{self, Card, CardError, Pin};
use crate::client::{self, Ballot, SavedReceipt};
use crate::receipts::{Folder, Saved};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use std::sync::Arc;
use zeroize::Zeroizing;

/// How the sending goes.
#[derive(Debug, Clone)]
pub(super) struct Sending {
    phase: &'static str,
    sent: u64,
    total: u64,
    note: String,
    error: Option<String>,
    pub(super) saved: Option<SavedReceipt>,
    done: Option<Value>,
}

impl Sending {
    fn new() -> Self {
        Sending {
            phase: "signing",
            sent: 0,
            total: 0,
            note: String::new(),
            error: None,
            saved: None,
            done: None,
        }
    }
}

fn card_words(e: &CardError) -> String {
    match e {
        CardError::WrongPin(left) => {
            format!("Wrong PIN. {left} Nothing was sent; type your PIN again.")
        }
        other => other.to_string(),
    }
}

/// `GET /api/card`: the card and its PIN's state, or the development key
/// files in use.
pub(super) async fn card_info(s: &Arc<Shared>) -> Result<Response<Full<Bytes>>, Said> {
    let s = s.clone();
    let info = tokio::task::spawn_blocking(move || -> Result<Value, Said> {
        if let Some((cert, _)) = &s.opts.pem {
            let pem = std::fs::read(cert)
                .map_err(|e| said(StatusCode::CONFLICT, format!("{}: {e}", cert.display())))?;
            let chain = shared::pki::tls_chain_from_pem(&pem)
                .map_err(|e| said(StatusCode::CONFLICT, e.to_string()))?;
            let summary = chain
                .first()
                .and_then(|c| shared::x509::card_certificate(c).ok());
            return Ok(json!({
                "kind": "files",
                "label": "development key files (no card)",
                "holder": summary.as_ref().map(|c| c.subject.clone()),
                "edipi": summary.and_then(|c| c.edipi),
                "locked": false,
                "tries": "",
            }));
        }
        let module = card::find_module(s.opts.pkcs11_module.as_deref())
            .map_err(|e| said(StatusCode::CONFLICT, card_words(&e)))?;
        let c = Card::open(&module, s.opts.card_label.as_deref())
            .map_err(|e| said(StatusCode::CONFLICT, card_words(&e)))?;
        let auth = c
            .authentication()
            .map_err(|e| said(StatusCode::CONFLICT, card_words(&e)))?;
        let summary = auth.summary.as_ref().ok();
        let state = c
            .pin_state()
            .map_err(|e| said(StatusCode::CONFLICT, card_words(&e)))?;
        let tries = if state.final_try {
            card::TriesLeft::Last
        } else if state.count_low {
            card::TriesLeft::Few
        } else {
            card::TriesLeft::Unknown
        };
        Ok(json!({
            "kind": "card",
            "label": c.token.label,
            "holder": summary.map(|s| s.subject.clone()),
            "edipi": summary.and_then(|s| s.edipi.clone()),
            "locked": state.locked,
            "tries": tries.to_string(),
            "min_len": state.min_len,
            "max_len": state.max_len,
        }))
    })
    .await
    .map_err(|_| {
        said(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the card could not be read",
        )
    })??;
    Ok(json_answer(StatusCode::OK, &info))
}

/// What the sending thread works from.
struct Job {
    url: String,
    fingerprint: String,
    manifest: shared::manifest::ElectionManifest,
    ballot: super::BallotFile,
}

/// `POST /api/send {"pin": …}`: logs in (answering at once), then signs,
/// seals and sends on a thread of its own.
pub(super) async fn start(s: &Arc<Shared>, v: Value) -> Result<Response<Full<Bytes>>, Said> {
    let pin = Zeroizing::new(
        v.get("pin")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    );
    let job = {
        let mut f = flow(s)?;
        if f.sending
            .as_ref()
            .is_some_and(|x| x.phase == "signing" || x.phase == "sending")
        {
            return Err(said(
                StatusCode::CONFLICT,
                "your ballot is being sent already",
            ));
        }
        let e = f
            .election
            .clone()
            .ok_or_else(|| said(StatusCode::CONFLICT, "choose the election first"))?;
        let now = shared::clock::Clock::now(&shared::clock::SystemClock);
        if now >= e.manifest.closes_at {
            return Err(said(
                StatusCode::CONFLICT,
                format!(
                    "Voting closed at {}; your ballot was not sent.",
                    e.manifest.closes_at
                ),
            ));
        }
        if !f.accepted {
            return Err(said(
                StatusCode::CONFLICT,
                "you must accept the declaration before your ballot is sent",
            ));
        }
        let ballot = f
            .ballot
            .clone()
            .ok_or_else(|| said(StatusCode::CONFLICT, "choose your ballot file first"))?;
        f.sending = Some(Sending::new());
        Job {
            url: e.url,
            fingerprint: e.fingerprint,
            manifest: e.manifest,
            ballot,
        }
    };
    let (logged_in, answer) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let shared = s.clone();
    let spawned = std::thread::Builder::new()
        .name("send".into())
        .spawn(move || run(&shared, job, Pin::typed(pin), logged_in));
    if spawned.is_err() {
        set_failed(s, "the sending could not start".into());
        return Err(said(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the sending could not start",
        ));
    }
    match answer.await {
        Ok(Ok(())) => Ok(json_answer(
            StatusCode::ACCEPTED,
            &json!({ "started": true }),
        )),
        Ok(Err(words)) => {
            if let Ok(mut f) = flow(s) {
                f.sending = None;
            }
            Err(said(StatusCode::FORBIDDEN, words))
        }
        Err(_) => Err(said(
            StatusCode::INTERNAL_SERVER_ERROR,
            super::gone().to_string(),
        )),
    }
}

fn update(s: &Shared, change: impl FnOnce(&mut Sending)) {
    if let Ok(mut f) = s.flow.lock() {
        if let Some(x) = f.sending.as_mut() {
            change(x);
        }
    }
}

fn set_failed(s: &Shared, words: String) {
    update(s, |x| {
        x.phase = "failed";
        x.error = Some(words);
    });
}

/// The sending thread.
fn run(
    s: &Arc<Shared>,
    job: Job,
    pin: Pin,
    logged_in: tokio::sync::oneshot::Sender<Result<(), String>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = logged_in.send(Err(e.to_string()));
            return;
        }
    };
    // The card, and the login, first: their answer goes back at once.
    let extra = match &s.opts.chain {
        Some(p) => std::fs::read(p)
            .map_err(anyhow::Error::from)
            .and_then(|pem| Ok(shared::pki::tls_chain_from_pem(&pem)?)),
        None => Ok(Vec::new()),
    };
    let creds = extra.and_then(|extra| match &s.opts.pem {
        Some((cert, key)) => {
            let key_pem = Zeroizing::new(std::fs::read(key)?);
            crate::signing::from_pem(&job.url, &std::fs::read(cert)?, &key_pem, extra, &s.roots)
        }
        None => {
            let module = card::find_module(s.opts.pkcs11_module.as_deref())?;
            let c = Card::open(&module, s.opts.card_label.as_deref())?;
            c.login(&pin)?;
            crate::signing::from_card(&job.url, &c, Arc::new(pin), extra, &s.roots)
        }
    });
    let (gw, creds) = match creds {
        Ok(c) => c,
        Err(e) => {
            let words = match e.downcast_ref::<CardError>() {
                Some(c) => card_words(c),
                None => shared::text::printable(&format!("{e:#}")).into_owned(),
            };
            let _ = logged_in.send(Err(words));
            return;
        }
    };
    let _ = logged_in.send(Ok(()));
    let result = rt.block_on(async {
        let me = gw.voter().await?;
        let upload = client::prepare(
            &job.manifest,
            &Ballot {
                content: job.ballot.content.clone(),
                media_type: job.ballot.media_type.clone(),
                ballot_style: me.ballot_style,
            },
            &creds,
        )?;
        let total = upload.len() as u64;
        update(s, |x| {
            x.phase = "sending";
            x.total = total;
        });
        let answer = client::upload(
            &gw,
            &upload,
            client::Retries::times(s.opts.attempts.max(1)),
            &mut |p| {
                update(s, |x| {
                    x.sent = p.sent;
                    x.total = p.total;
                });
            },
            &mut |m| {
                let m = m.to_owned();
                update(s, |x| x.note = m);
            },
        )
        .await?;
        let (receipt, cp) = client::check_receipt(&job.manifest, &upload, &answer)?;
        client::check_receipt_time(
            &receipt,
            shared::clock::Clock::now(&shared::clock::SystemClock),
        )?;
        let saved =
            SavedReceipt::new(&job.manifest, &job.fingerprint, &job.url, &receipt, &answer)?;
        let kept = Folder::open(&s.opts.receipts)?.save(&saved)?;
        let file = match &kept {
            Saved::New(p) | Saved::AlreadyThere(p) => p.display().to_string(),
        };
        Ok::<_, anyhow::Error>((
            saved,
            json!({
                "entry": receipt.index,
                "log_size": cp.checkpoint.size,
                "received_at": receipt.entry.received_at.to_rfc3339(),
                "ballot_sha256": hex::encode(receipt.entry.message_sha256),
                "election": job.manifest.title,
                "duplicate": answer.duplicate,
                "file": file,
            }),
        ))
    });
    match result {
        Ok((saved, view)) => update(s, |x| {
            x.phase = "done";
            x.sent = x.total;
            x.saved = Some(saved);
            x.done = Some(view);
        }),
        Err(e) => set_failed(
            s,
            format!(
                "Your ballot was NOT sent: {}",
                shared::text::printable(&format!("{e:#}"))
            ),
        ),
    }
}

/// `GET /api/progress`.
pub(super) fn progress(s: &Shared) -> Result<Response<Full<Bytes>>, Said> {
    let f = flow(s)?;
    let Some(x) = &f.sending else {
        return Ok(json_answer(StatusCode::OK, &json!({ "phase": "idle" })));
    };
    Ok(json_answer(
        StatusCode::OK,
        &json!({
            "phase": x.phase,
            "sent": x.sent,
            "total": x.total,
            "note": x.note,
            "error": x.error,
            "receipt": x.done,
        }),
    ))
}
