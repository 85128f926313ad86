//! Discovery without seed lists: authenticated UDP gossip (multicast on loopback) and DNS
//! (A records and SRV records) answered by a name server this test runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::discovery::announcement_packet;
use actor_cluster::NodeIdentity;
use actor_testkit::TestNode;
use common::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use parking_lot::Mutex;
use tokio::net::{TcpListener, UdpSocket};

/// A multicast group and port unlikely to collide with a concurrent run.
fn gossip_group() -> SocketAddr {
    let p = std::process::id();
    SocketAddr::from((
        Ipv4Addr::new(239, 255, (p % 250) as u8, ((p / 250) % 250) as u8),
        20_000 + (p % 20_000) as u16,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_finds_nodes_and_ignores_packets_with_the_wrong_secret() {
    let group = gossip_group();
    let g = group.to_string();
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(
            TestNode::start(
                BIN,
                &format!("g{i}"),
                &args(&["--gossip", &g, "--gossip-secret", "s3cret"]),
            )
            .await
            .unwrap(),
        );
    }
    let took = wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    println!("3 nodes found each other by gossip in {took:?}");

    // Announce two fake nodes pointing at listeners of this test: one signed with the wrong
    // secret (must be ignored: nobody dials it), one with the right secret (a positive control:
    // the nodes dial it).
    let forged_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let genuine_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forged = announcement_packet(
        b"wrong",
        "default",
        &NodeIdentity {
            name: "forged".into(),
            incarnation: 1,
            addr: forged_l.local_addr().unwrap(),
        },
    )
    .unwrap();
    let genuine = announcement_packet(
        b"s3cret",
        "default",
        &NodeIdentity {
            name: "genuine".into(),
            incarnation: 1,
            addr: genuine_l.local_addr().unwrap(),
        },
    )
    .unwrap();
    // Multicast sent on the loopback interface only: nothing leaves this host.
    let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    raw.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    raw.set_multicast_loop_v4(true).unwrap();
    raw.set_multicast_ttl_v4(0).unwrap();
    raw.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    raw.set_nonblocking(true).unwrap();
    let sock = UdpSocket::from_std(raw.into()).unwrap();
    for _ in 0..5 {
        sock.send_to(&forged, group).await.unwrap();
        sock.send_to(b"garbage", group).await.unwrap();
    }
    let forged_dial = tokio::time::timeout(Duration::from_millis(1500), forged_l.accept()).await;
    assert!(
        forged_dial.is_err(),
        "a node dialed the address of a forged announcement"
    );
    sock.send_to(&genuine, group).await.unwrap();
    let genuine_dial = tokio::time::timeout(Duration::from_secs(3), genuine_l.accept()).await;
    assert!(
        genuine_dial.is_ok(),
        "no node dialed the address of a genuine announcement"
    );
}

#[derive(Default)]
struct Zone {
    a: HashMap<String, Vec<Ipv4Addr>>,
    srv: HashMap<String, Vec<(u16, String)>>,
}

/// A UDP name server answering A and SRV queries from `zone`.
async fn name_server(zone: Arc<Mutex<Zone>>) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new();
            reply
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code())
                .set_authoritative(true)
                .set_recursion_available(true)
                .set_response_code(ResponseCode::NoError);
            for q in query.queries() {
                reply.add_query(q.clone());
                let key = q.name().to_ascii().to_lowercase();
                let zone = zone.lock();
                match q.query_type() {
                    RecordType::A => {
                        for ip in zone.a.get(&key).into_iter().flatten() {
                            reply.add_answer(Record::from_rdata(
                                q.name().clone(),
                                0,
                                RData::A(A(*ip)),
                            ));
                        }
                    }
                    RecordType::SRV => {
                        for (port, target) in zone.srv.get(&key).into_iter().flatten() {
                            let t = Name::from_ascii(target).unwrap();
                            reply.add_answer(Record::from_rdata(
                                q.name().clone(),
                                0,
                                RData::SRV(SRV::new(0, 0, *port, t)),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = sock.send_to(&bytes, from).await;
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_a_records_of_a_headless_service() {
    // Three nodes on three loopback addresses with one port, as pods behind a headless service.
    let probe = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let ips = [
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
    ];
    let zone = Arc::new(Mutex::new(Zone::default()));
    zone.lock().a.insert("nodes.test.".into(), ips.to_vec());
    let ns = name_server(zone).await.to_string();
    let p = port.to_string();
    let mut nodes = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let listen = SocketAddr::from((*ip, port)).to_string();
        nodes.push(
            TestNode::start_at(
                BIN,
                &format!("d{i}"),
                &listen,
                &args(&[
                    "--dns-server",
                    &ns,
                    "--dns-name",
                    "nodes.test.",
                    "--dns-port",
                    &p,
                ]),
            )
            .await
            .unwrap(),
        );
    }
    let took = wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    println!("3 nodes found each other through A records in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_srv_records() {
    let zone = Arc::new(Mutex::new(Zone::default()));
    let ns = name_server(zone.clone()).await.to_string();
    let srv_name = "_cluster._tcp.nodes.test.";
    let mut nodes = Vec::new();
    for i in 0..3 {
        let node = TestNode::start(
            BIN,
            &format!("s{i}"),
            &args(&["--dns-server", &ns, "--dns-name", srv_name, "--dns-srv"]),
        )
        .await
        .unwrap();
        let id = node.identity().cloned().unwrap();
        let target = format!("{}.nodes.test.", id.name);
        let mut z = zone.lock();
        z.a.insert(target.clone(), vec![Ipv4Addr::LOCALHOST]);
        z.srv
            .entry(srv_name.into())
            .or_default()
            .push((id.addr.port(), target));
        drop(z);
        nodes.push(node);
    }
    let took = wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    println!("3 nodes found each other through SRV records in {took:?}");
}
