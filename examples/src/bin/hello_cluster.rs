//! Two node processes, a typed entity per name, a failover.
//!
//! This process is node `a`; it starts node `b` as a second process of the same program (a
//! process holds one node: ractor's registry and groups are process-wide). `a` starts a greeter
//! entity for each of four names somewhere in the cluster and greets each one by name, wherever
//! it runs. Then `b` is killed with SIGKILL, and the greeters that ran there answer again from
//! `a`, restarted by the distributed supervisor.
//!
//! `cargo run -p examples --bin hello_cluster`
#![allow(clippy::print_stdout)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use actor_cluster::supervisor::{DistributedSupervisor, Entity, EntityContext};
use actor_cluster::{MemberEvent, Node};
use actor_core::RemoteMessage;
use ractor::{ActorProcessingErr, RpcReplyPort};
use tokio::io::AsyncBufReadExt;

/// What a greeter understands. It crosses nodes, so it derives `RemoteMessage`; a variant that
/// ends in a reply port is a call.
#[derive(RemoteMessage)]
enum GreeterMsg {
    Hello(String, RpcReplyPort<String>),
}

/// A greeter: one per name, counting the greetings it gave.
struct Greeter {
    greeted: u64,
}

impl Entity for Greeter {
    /// The kind's name, the same on every node.
    const KIND: &'static str = "greeter";
    /// Started with nothing but its id.
    type Args = ();
    type Msg = GreeterMsg;
    /// On a planned move (a drain) it takes its count along; after a crash it starts at 0.
    type Handoff = u64;
    /// What the greeters of one node share: the node's name.
    type Context = String;

    async fn start(
        _ctx: &EntityContext<Self>,
        _args: (),
        handoff: Option<u64>,
    ) -> Result<Self, ActorProcessingErr> {
        Ok(Self {
            greeted: handoff.unwrap_or(0),
        })
    }

    async fn handle(
        &mut self,
        ctx: &EntityContext<Self>,
        msg: GreeterMsg,
    ) -> Result<(), ActorProcessingErr> {
        let GreeterMsg::Hello(who, reply) = msg;
        self.greeted += 1;
        let _ = reply.send(format!(
            "hello {who}, from {} on {} (greeting #{})",
            ctx.id(),
            ctx.context(),
            self.greeted
        ));
        Ok(())
    }

    async fn handoff(&mut self) -> Option<u64> {
        Some(self.greeted)
    }
}

/// A node with the supervisor `hello`, which runs greeters.
async fn start_node(
    name: &str,
    seeds: Vec<String>,
) -> Result<(Node, DistributedSupervisor), Box<dyn std::error::Error>> {
    let node = Node::builder(name)
        .listen("127.0.0.1:0".parse()?)
        .cookie("hello")
        .seeds(seeds)
        .start()
        .await?;
    let sup = DistributedSupervisor::builder("hello")
        .entity::<Greeter>(name.to_owned())
        .start(&node)
        .await?;
    Ok((node, sup))
}

/// Node `b`: joins `a` and runs until killed (or until `a` closes its stdin).
async fn run_b(seed: String) -> Result<(), Box<dyn std::error::Error>> {
    let (_node, _sup) = start_node("b", vec![seed]).await?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while stdin.next_line().await?.is_some() {}
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, seed] = args.as_slice() {
        if role == "b" {
            return run_b(seed.clone()).await;
        }
    }

    let (a, sup) = start_node("a", vec![]).await?;
    let mut b = tokio::process::Command::new(std::env::current_exe()?)
        .args(["b", &a.addr().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let b_pid = b.id().unwrap_or_default();
    // Both supervisors have met: children can be placed on either node.
    sup.wait_for_members(2, Duration::from_secs(10)).await?;
    println!(
        "cluster: a (pid {}) and b (pid {b_pid})",
        std::process::id()
    );

    let names = ["ada", "grace", "linus", "barbara", "ken", "margaret"];
    let mut on_b = Vec::new();
    for name in names {
        let greeter = sup.entity::<Greeter>(format!("greeter:{name}"));
        let started = greeter.start(&(), Duration::from_secs(5)).await?;
        println!("{} runs on {}", greeter.id(), started.node);
        if started.node == "b" {
            on_b.push(greeter.clone());
        }
        let answer = greeter
            .call(
                |r| GreeterMsg::Hello(name.into(), r),
                Duration::from_secs(5),
            )
            .await?;
        println!("  {answer}");
    }

    // b dies as a crashed machine does. A call sent to it meanwhile would be in doubt (it
    // may have been handled before the kill), so it is not re-sent; wait for b to be down.
    let mut events = a.subscribe();
    let killed = Instant::now();
    b.start_kill()?;
    b.wait().await?;
    println!("b killed with SIGKILL");
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(ev) = events.recv().await {
            if matches!(&ev, MemberEvent::MemberDown { node, .. } if node.name == "b") {
                break;
            }
        }
    })
    .await?;
    println!(
        "a saw b down {:.0} ms after the kill",
        killed.elapsed().as_secs_f64() * 1000.0
    );
    for greeter in &on_b {
        // The call waits while the greeter has no node, and goes out once it runs again.
        let answer = greeter
            .call(
                |r| GreeterMsg::Hello("again".into(), r),
                Duration::from_secs(10),
            )
            .await?;
        println!(
            "  {answer} ({:.0} ms after the kill)",
            killed.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
