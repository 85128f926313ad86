//! Two nodes, one supervised actor, a failover. Both nodes run in this process for brevity; the
//! node that runs the actor is then cut off from the other (as a crashed machine would be), and
//! the actor is restarted on the survivor.
//!
//! `cargo run -p examples --bin hello_cluster`
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use actor_cluster::supervisor::{DistChildSpec, DistributedSupervisor, StartContext};
use actor_cluster::Node;
use actor_core::RemoteMessage;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

/// What the greeter understands; it crosses nodes, so it derives `RemoteMessage`.
#[derive(RemoteMessage)]
enum GreeterMsg {
    Hello(String, RpcReplyPort<String>),
}

/// A greeter that says which node it runs on.
struct Greeter;

impl Actor for Greeter {
    type Msg = GreeterMsg;
    type State = String;
    type Arguments = String;

    async fn pre_start(
        &self,
        _: ActorRef<GreeterMsg>,
        node: String,
    ) -> Result<String, ActorProcessingErr> {
        Ok(node)
    }

    async fn handle(
        &self,
        _: ActorRef<GreeterMsg>,
        msg: GreeterMsg,
        node: &mut String,
    ) -> Result<(), ActorProcessingErr> {
        let GreeterMsg::Hello(who, reply) = msg;
        let _ = reply.send(format!("hello {who}, from {node}"));
        Ok(())
    }
}

/// A node with the supervisor `hello`, which knows how to start greeters.
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
    let me = name.to_owned();
    let sup = DistributedSupervisor::builder("hello")
        .kind("greeter", move |ctx: StartContext| {
            let me = me.clone();
            async move {
                let (actor, _) = Actor::spawn_linked(None, Greeter, me, ctx.supervisor).await?;
                Ok(actor.get_cell())
            }
        })
        .start(&node)
        .await?;
    Ok((node, sup))
}

async fn greet(
    sup: &DistributedSupervisor,
    who: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let who = who.to_owned();
    Ok(sup
        .call_child("greeter", Duration::from_secs(5), move |r| {
            GreeterMsg::Hello(who.clone(), r)
        })
        .await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (a, a_sup) = start_node("a", vec![]).await?;
    let (b, b_sup) = start_node("b", vec![a.addr().to_string()]).await?;
    while a_sup.eligible_members().await?.len() < 2 || b_sup.eligible_members().await?.len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("cluster: a at {}, b at {}", a.addr(), b.addr());

    // Start the greeter somewhere in the cluster, and call it by name from both nodes.
    let spec = DistChildSpec::new("greeter", "greeter", Vec::new());
    let runs_on = a_sup.start_child(spec, Duration::from_secs(5)).await?;
    println!("the greeter runs on {runs_on}");
    println!("a asks: {}", greet(&a_sup, "a").await?);
    println!("b asks: {}", greet(&b_sup, "b").await?);

    // The node that runs it becomes unreachable, as a crashed machine does.
    let (dead, dead_sup, survivor, survivor_sup) = if runs_on == "a" {
        (&a, &a_sup, &b, &b_sup)
    } else {
        (&b, &b_sup, &a, &a_sup)
    };
    let cut = Instant::now();
    dead.faults().block([survivor.identity().name.clone()]);
    survivor.faults().block([dead.identity().name.clone()]);
    dead_sup.stop();
    println!("{runs_on} is cut off");
    let now_on = survivor_sup
        .wait_running("greeter", Duration::from_secs(10))
        .await?;
    let mut now_on = now_on;
    while now_on != survivor.identity().name {
        tokio::time::sleep(Duration::from_millis(10)).await;
        now_on = survivor_sup
            .wait_running("greeter", Duration::from_secs(10))
            .await?;
    }
    println!(
        "the greeter was restarted on {now_on} {:.0} ms after the cut",
        cut.elapsed().as_secs_f64() * 1000.0
    );
    println!(
        "{} asks: {}",
        survivor.identity().name,
        greet(survivor_sup, "again").await?
    );
    Ok(())
}
