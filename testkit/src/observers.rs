//! The observers' witnesses, real `ballot-witness` services on loopback:
//! each has its own folder, key and SQLite database, and answers over HTTP
//! on a port bound before the county's ceremony (the manifest names it).

use shared::clock::Clock;
use shared::manifest::ManifestWitness;
use std::sync::{Arc, Mutex};

/// Witnesses whose keys and addresses exist; [`Observers::start`] serves
/// them.
#[derive(Debug)]
pub struct Observers {
    /// Their folders (under one temporary folder).
    pub dir: tempfile::TempDir,
    /// What the manifest says of them.
    pub witnesses: Vec<ManifestWitness>,
    /// The quorum the manifest asks.
    pub quorum: u8,
    listeners: Mutex<Vec<Option<std::net::TcpListener>>>,
    running: Mutex<Vec<Option<tokio::sync::oneshot::Sender<()>>>>,
}

impl Observers {
    /// `n` witnesses on loopback, of which `quorum` must cosign.
    pub fn bind(n: usize, quorum: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut witnesses = Vec::new();
        let mut listeners = Vec::new();
        for i in 0..n {
            let name = format!("observer-{i}.test.example/witness");
            let key = observer::witness::init(&dir.path().join(format!("w{i}")), &name).unwrap();
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.set_nonblocking(true).unwrap();
            witnesses.push(ManifestWitness {
                key,
                url: format!("http://{}/", l.local_addr().unwrap()),
            });
            listeners.push(Some(l));
        }
        Observers {
            dir,
            witnesses,
            quorum,
            running: Mutex::new((0..n).map(|_| None).collect()),
            listeners: Mutex::new(listeners),
        }
    }

    /// Witnesses that are named but never answer (connections are
    /// refused), with their signing keys (secret key text) so a test that
    /// logs ballots straight through the sequencer can cosign as honest
    /// witnesses would ([`crate::voters::witness_latest`]).
    pub fn stand_ins(n: usize) -> (Vec<ManifestWitness>, Vec<String>) {
        (0..n)
            .map(|i| {
                let name = format!("stand-in-{i}.test.example/witness");
                let key = shared::note::NoteSigner::generate(&name, shared::note::TYPE_COSIGNATURE)
                    .unwrap();
                // Port 9 (discard) on loopback: nothing listens there.
                let w = ManifestWitness {
                    key: key.verifier().to_vkey(),
                    url: format!("http://127.0.0.1:9/{i}/"),
                };
                (w, key.to_skey().to_string())
            })
            .unzip()
    }

    /// The witness `i`, opened (for tests that look at its state).
    pub fn open(&self, i: usize, clock: Arc<dyn Clock>) -> observer::witness::Witness {
        observer::witness::Witness::open(&self.dir.path().join(format!("w{i}")), clock).unwrap()
    }

    /// Serves every witness that is not running, trusting `log_key`. Must
    /// be called inside a tokio runtime.
    pub fn start(&self, log_key: &str, clock: Arc<dyn Clock>) {
        for i in 0..self.witnesses.len() {
            self.start_one(i, log_key, clock.clone());
        }
    }

    /// Serves witness `i` (again, after [`Observers::stop_one`]).
    pub fn start_one(&self, i: usize, log_key: &str, clock: Arc<dyn Clock>) {
        let mut running = self.running.lock().unwrap();
        if running[i].is_some() {
            return;
        }
        let w = self.open(i, clock);
        w.add_log(log_key).unwrap();
        let std_listener = match self.listeners.lock().unwrap()[i].take() {
            Some(l) => l,
            None => {
                let addr = self.witnesses[i]
                    .url
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
                let l = std::net::TcpListener::bind(addr).unwrap();
                l.set_nonblocking(true).unwrap();
                l
            }
        };
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(observer::serve::serve(listener, Arc::new(w), async move {
            let _ = stopped.await;
        }));
        running[i] = Some(stop);
    }

    /// Stops witness `i` and returns once its port refuses connections
    /// (it stays closed until the witness starts again).
    pub fn stop_one(&self, i: usize) {
        if let Some(stop) = self.running.lock().unwrap()[i].take() {
            let _ = stop.send(());
        }
        let addr = self.witnesses[i]
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        for _ in 0..500 {
            if std::net::TcpStream::connect(&addr).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("witness {i} still accepts connections after it was stopped");
    }
}
