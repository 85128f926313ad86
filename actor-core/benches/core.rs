//! Benchmarks of actor-core: restart latency (a child fails until its replacement has handled
//! its first message) and codec encode+decode per message.
//!
//! `cargo bench -p actor-core` runs criterion and, before it, prints one JSON line per figure
//! with the median and p99 of individually timed operations.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use actor_core::ractor::{Actor, ActorProcessingErr, ActorRef, Message, RpcReplyPort};
use actor_core::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorRef, SupervisorSpec};
use actor_core::{codec, LocalMessage, RemoteMessage};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Clone)]
struct Child;

#[derive(LocalMessage)]
enum ChildMsg {
    Fail,
    Ping(RpcReplyPort<()>),
}

impl Actor for Child {
    type Msg = ChildMsg;
    type State = ();
    type Arguments = mpsc::UnboundedSender<ActorRef<ChildMsg>>;

    async fn pre_start(
        &self,
        myself: ActorRef<ChildMsg>,
        started: Self::Arguments,
    ) -> Result<(), ActorProcessingErr> {
        let _ = started.send(myself);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ChildMsg>,
        msg: ChildMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ChildMsg::Fail => Err("bench failure".into()),
            ChildMsg::Ping(r) => {
                let _ = r.send(());
                Ok(())
            }
        }
    }
}

struct Restarter {
    _sup: SupervisorRef,
    current: ActorRef<ChildMsg>,
    started: mpsc::UnboundedReceiver<ActorRef<ChildMsg>>,
}

impl Restarter {
    async fn new() -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(u32::MAX, Duration::from_millis(1))
            .child(ChildSpec::actor("child", None, Child, tx));
        let (sup, _) = Supervisor::spawn(None, spec).await.unwrap();
        let current = rx.recv().await.unwrap();
        Self {
            _sup: sup,
            current,
            started: rx,
        }
    }

    /// One restart: fail the child, wait for its replacement, and have it answer a call.
    async fn restart(&mut self) -> Duration {
        let t0 = Instant::now();
        self.current.cast(ChildMsg::Fail).unwrap();
        self.current = self.started.recv().await.unwrap();
        self.current.call(ChildMsg::Ping, None).await.unwrap();
        t0.elapsed()
    }
}

/// A message of about 100 encoded bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HandFinished {
    tournament: String,
    table: u32,
    hand_no: u64,
    stacks: Vec<(u32, u64)>,
}

fn sample() -> HandFinished {
    HandFinished {
        tournament: "tournament-0042".into(),
        table: 17,
        hand_no: 1_234_567,
        stacks: (0..10)
            .map(|i| (1000 + i, 15_000 + u64::from(i) * 1_337))
            .collect(),
    }
}

#[derive(RemoteMessage)]
enum RankingMsg {
    HandFinished(HandFinished),
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e9
}

fn print_figures(rt: &tokio::runtime::Runtime) {
    let mut r = rt.block_on(Restarter::new());
    let mut samples: Vec<Duration> = rt.block_on(async {
        for _ in 0..1_000 {
            r.restart().await;
        }
        let mut v = Vec::with_capacity(10_000);
        for _ in 0..10_000 {
            v.push(r.restart().await);
        }
        v
    });
    samples.sort();
    println!(
        "{{\"bench\":\"restart_latency\",\"n\":{},\"p50_ns\":{:.0},\"p99_ns\":{:.0}}}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );

    let msg = sample();
    let frame = codec::encode(&msg).unwrap();
    let n = 1_000_000u32;
    let t0 = Instant::now();
    for _ in 0..n {
        let f = codec::encode(black_box(&msg)).unwrap();
        let back: HandFinished = codec::decode(black_box(&f)).unwrap();
        black_box(back);
    }
    let per = t0.elapsed().as_secs_f64() * 1e9 / f64::from(n);
    println!(
        "{{\"bench\":\"codec_encode_decode\",\"frame_bytes\":{},\"ns_per_message\":{:.1}}}",
        frame.len(),
        per
    );
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    print_figures(&rt);

    let mut r = rt.block_on(Restarter::new());
    c.bench_function("restart_latency", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += r.restart().await;
                }
                total
            })
        })
    });

    let msg = sample();
    let frame = codec::encode(&msg).unwrap();
    assert!(
        (95..=110).contains(&frame.len()),
        "frame is {} bytes",
        frame.len()
    );
    c.bench_function("codec_encode_decode_100B", |b| {
        b.iter(|| {
            let f = codec::encode(black_box(&msg)).unwrap();
            let back: HandFinished = codec::decode(black_box(&f)).unwrap();
            back
        })
    });
    c.bench_function("codec_encode_100B", |b| {
        b.iter(|| codec::encode(black_box(&msg)).unwrap())
    });
    c.bench_function("codec_decode_100B", |b| {
        b.iter(|| codec::decode::<HandFinished>(black_box(&frame)).unwrap())
    });
    c.bench_function("derived_message_serialize_deserialize_100B", |b| {
        b.iter(|| {
            let wire = RankingMsg::HandFinished(black_box(msg.clone()))
                .serialize()
                .unwrap();
            RankingMsg::deserialize(wire).unwrap()
        })
    });
}

criterion_group! {
    name = core;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(core);
