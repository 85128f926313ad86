//! A cast and a call between two node processes (ractor_cluster over TCP on 127.0.0.1, the port
//! picked by the OS), using derived codec messages.
//!
//! The parent test starts the peer as a child process of this same test binary (running the
//! ignored test `peer_node`), hands it the address of a listener it bound on port 0, and the peer
//! dials in. The TCP streams are given to ractor_cluster through its external-transport hook.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actor_core::ractor::rpc::CallResult;
use actor_core::ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use actor_core::RemoteMessage;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServer, NodeServerMessage};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

const GROUP: &str = "codec-remote-test";
const PEER_ENV: &str = "ACTOR_CORE_CODEC_PEER_ADDR";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle { r: f64 },
    Poly(Vec<(i32, i32)>),
    Labelled(String, Box<Shape>),
}

#[derive(RemoteMessage)]
enum PeerMsg {
    Add(i64),
    Total(RpcReplyPort<i64>),
    Describe(Shape, RpcReplyPort<(String, Shape)>),
    /// The peer drops the reply port without answering.
    Ignore(RpcReplyPort<u8>),
    Quit,
}

struct Peer;

impl Actor for Peer {
    type Msg = PeerMsg;
    type State = i64;
    type Arguments = ();

    async fn pre_start(&self, _m: ActorRef<PeerMsg>, _: ()) -> Result<i64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        myself: ActorRef<PeerMsg>,
        msg: PeerMsg,
        total: &mut i64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PeerMsg::Add(n) => *total += n,
            PeerMsg::Total(r) => {
                let _ = r.send(*total);
            }
            PeerMsg::Describe(shape, r) => {
                let text = format!("{shape:?}");
                let _ = r.send((text, Shape::Labelled("seen".into(), Box::new(shape))));
            }
            PeerMsg::Ignore(r) => drop(r),
            PeerMsg::Quit => myself.stop(None),
        }
        Ok(())
    }
}

struct Tcp(TcpStream);

impl ClusterBidiStream for Tcp {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (r, w) = self.0.into_split();
        (Box::new(r), Box::new(w))
    }
}

async fn node_server(name: &str) -> ActorRef<NodeServerMessage> {
    let server = NodeServer::new(
        0,
        "cookie".into(),
        name.into(),
        "127.0.0.1".into(),
        None,
        None,
    )
    .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into());
    let (r, _) = Actor::spawn(None, server, ()).await.unwrap();
    r
}

/// The peer process: serves `Peer` in the pg group until told to quit (bounded to 60 s).
#[tokio::test]
#[ignore = "runs only as the child process of cast_and_call_between_two_node_processes"]
async fn peer_node() {
    let addr = std::env::var(PEER_ENV).expect("run by the parent test");
    let server = node_server("peer").await;
    let (peer, handle) = Actor::spawn(None, Peer, ()).await.unwrap();
    actor_core::ractor::pg::join(GROUP.into(), vec![peer.get_cell()]);
    let stream = TcpStream::connect(&addr).await.unwrap();
    ractor_cluster::client_connect_external(&server, Box::new(Tcp(stream)))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), handle)
        .await
        .expect("peer told to quit within 60 s")
        .unwrap();
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn cast_and_call_between_two_node_processes() {
    let server = node_server("parent").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["peer_node", "--exact", "--ignored", "--nocapture"])
            .env(PEER_ENV, addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (stream, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the peer dials in")
        .unwrap();
    server
        .cast(NodeServerMessage::ConnectionOpenedExternal {
            stream: Box::new(Tcp(stream)),
            is_server: true,
        })
        .unwrap();

    // Wait (bounded) for the peer's actor to appear through the pg group.
    let deadline = Instant::now() + Duration::from_secs(10);
    let remote: ActorRef<PeerMsg> = loop {
        let members = actor_core::ractor::pg::get_members(&GROUP.to_string());
        if let Some(cell) = members.into_iter().find(|c| !c.get_id().is_local()) {
            break cell.into();
        }
        assert!(Instant::now() < deadline, "peer actor never appeared");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    // Casts, then a call on the same FIFO path sees their effect.
    remote.cast(PeerMsg::Add(5)).unwrap();
    remote.cast(PeerMsg::Add(37)).unwrap();
    let total = remote
        .call(PeerMsg::Total, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(matches!(total, CallResult::Success(42)), "{total:?}");

    // A call with a nested argument and a nested answer.
    let shape = Shape::Poly(vec![(0, 0), (3, 4), (-1, 2)]);
    let sent = shape.clone();
    let answer = remote
        .call(|r| PeerMsg::Describe(sent, r), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    match answer {
        CallResult::Success((text, Shape::Labelled(label, inner))) => {
            assert_eq!(text, format!("{shape:?}"));
            assert_eq!(label, "seen");
            assert_eq!(*inner, shape);
        }
        other => panic!("unexpected answer {other:?}"),
    }

    // A remote handler that drops its reply port: the caller learns at once, not at the timeout.
    let began = Instant::now();
    let answer = remote
        .call(PeerMsg::Ignore, Some(Duration::from_secs(10)))
        .await;
    assert!(
        matches!(answer, Ok(CallResult::SenderError) | Err(_)),
        "{answer:?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "took {:?}",
        began.elapsed()
    );

    remote.cast(PeerMsg::Quit).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .await
    .unwrap();
    assert!(status.expect("peer exits after Quit").success());
}
