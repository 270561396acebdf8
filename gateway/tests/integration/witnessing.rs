//! The gateway has its checkpoints cosigned by the observers' real
//! witnesses on loopback, and uploads never wait for them.

use gateway::config::Limits;
use http::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use testkit::observers::Observers;
use testkit::world::{post, World};

/// Polls `/v1/log/witnessed` until it covers `size` leaves (bounded).
pub async fn witnessed(w: &World, r: &testkit::world::Running, size: u64) -> Option<String> {
    for _ in 0..300 {
        let a = w
            .anonymous(r)
            .request(Method::GET, shared::api::WITNESSED, None)
            .await
            .unwrap();
        if a.status == StatusCode::OK {
            let text = String::from_utf8(a.body.to_vec()).unwrap();
            let policy = w.county.manifest.witness_policy().unwrap();
            let v = policy.verify(text.as_bytes()).unwrap();
            if v.checkpoint.checkpoint.size >= size {
                return Some(text);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_witnessed_by_a_quorum_and_uploads_go_on_when_witnesses_are_down() {
    let obs = Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    let clock: Arc<dyn shared::clock::Clock> = Arc::new(w.county.clock.clone());
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
    let text = witnessed(&w, &r, 1).await.expect("witnessed within 30 s");
    let v = w
        .county
        .manifest
        .witness_policy()
        .unwrap()
        .verify(text.as_bytes())
        .unwrap();
    assert_eq!(v.cosigners.len(), 3, "all three cosigned");
    assert_eq!(v.time, shared::clock::Clock::now(&w.county.clock));

    // One witness down: a quorum of two still cosigns.
    obs.stop_one(0);
    let a = post(&w.client(&r, "maria-rsa"), w.ballot("maria-rsa", "x"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    let text = witnessed(&w, &r, 2).await.expect("a quorum of two");
    let v = w
        .county
        .manifest
        .witness_policy()
        .unwrap()
        .verify(text.as_bytes())
        .unwrap();
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
    let a = w
        .anonymous(&r)
        .request(Method::GET, shared::api::WITNESSED, None)
        .await
        .unwrap();
    let v = w
        .county
        .manifest
        .witness_policy()
        .unwrap()
        .verify(&a.body)
        .unwrap();
    assert_eq!(v.checkpoint.checkpoint.size, 2, "the last witnessed stays");

    // Back up: the witness that missed a checkpoint catches up (its 409
    // teaches the gateway its size) and the log is witnessed again.
    obs.start_one(0, &w.county.manifest.log_key, clock.clone());
    assert!(witnessed(&w, &r, 3).await.is_some(), "witnessed again");
    r.stop().await;
}
