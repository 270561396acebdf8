//! The gateway has its checkpoints cosigned by the observers' real
//! witnesses on loopback, and uploads never wait for them.

use gateway::config::Limits;
use http::{Method, StatusCode};
use shared::clock::{Clock, UnixTime};
use std::sync::Arc;
use std::time::Duration;
use testkit::observers::Observers;
use testkit::world::{post, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_witnessed_by_a_quorum_and_uploads_go_on_when_witnesses_are_down() {
    let obs = Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    let clock: Arc<dyn Clock> = Arc::new(w.county.clock.clone());
    obs.start(&w.county.manifest.log_key, clock.clone());
    let r = w.start().await;

    // Nothing logged: nothing witnessed.
    let a = w
        .anonymous(&r)
        .request(Method::GET, shared::api::WITNESSED, None)
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&a.body).contains("not-witnessed-yet"));

    let a = post(&w.client(&r, "jane-p256"), w.ballot("jane-p256", "x"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    let v = w.witnessed(r.port, 1).await.expect("witnessed within 30 s");
    assert_eq!(v.cosigners.len(), 3, "all three cosigned");
    assert_eq!(v.time, clock.now());

    // One witness down: a quorum of two still cosigns.
    obs.stop_one(0);
    let a = post(&w.client(&r, "maria-rsa"), w.ballot("maria-rsa", "x"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    let v = w.witnessed(r.port, 2).await.expect("a quorum of two");
    assert_eq!(v.cosigners.len(), 2);

    // Two down: short of the quorum. Uploads and receipts go on.
    obs.stop_one(1);
    let a = post(
        &w.client(&r, "jane-p256"),
        w.ballot("jane-p256", "a replacement"),
    )
    .await
    .unwrap();
    assert_eq!(
        a.status,
        StatusCode::OK,
        "uploads do not wait for witnesses"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let v = voter::client::witnessed(&w.anonymous(&r), &w.county.manifest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.checkpoint.checkpoint.size, 2, "the last witnessed stays");

    // Back up: the witness that missed a checkpoint catches up (its 409
    // teaches the gateway its size) and the log is witnessed again.
    obs.start_one(0, &w.county.manifest.log_key, clock.clone());
    assert!(w.witnessed(r.port, 3).await.is_some(), "witnessed again");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_deadline_the_closing_checkpoint_is_cosigned_again() {
    let obs = Observers::bind(2, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    let clock: Arc<dyn Clock> = Arc::new(w.county.clock.clone());
    obs.start(&w.county.manifest.log_key, clock.clone());
    let r = w.start().await;
    let a = post(&w.client(&r, "jane-p256"), w.ballot("jane-p256", "x"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    let before = w.witnessed(r.port, 1).await.expect("witnessed");
    let closes = w.county.manifest.closes_at;
    assert!(before.time < closes);

    // The deadline passes with no new ballot: the same checkpoint is
    // submitted again and its new cosignatures are timed after it.
    w.county.clock.set(UnixTime(closes.0 + 5));
    let mut closing = None;
    for _ in 0..300 {
        let v = voter::client::witnessed(&w.anonymous(&r), &w.county.manifest)
            .await
            .unwrap()
            .unwrap();
        if v.time >= closes {
            closing = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closing = closing.expect("a closing checkpoint within 30 s");
    assert_eq!(closing.checkpoint.checkpoint, before.checkpoint.checkpoint);
    assert_eq!(closing.time, UnixTime(closes.0 + 5));
    r.stop().await;
}
