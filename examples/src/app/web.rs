//! The admin web page of a node, with its JSON API and Prometheus metrics (axum; the page is one
//! static HTML file with a little JavaScript, no front-end build).
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the page: members, children per node, registry, flags (with gate editing), live standings |
//! | `GET /api/state` | what the page shows, as JSON |
//! | `GET /api/standings/{id}?limit=N` | a tournament's first N rows (live, or final) |
//! | `/api/flags/...` | actor-flags' admin API, behind the admin token (absent without one); writes are recorded as `admin` in each flag's history (`GET /api/flags/{name}/history`) |
//! | `GET /metrics` | Prometheus text format |

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use actor_cluster::MemberState;
use actor_flags::admin::{AdminAuth, FlagJson};
use actor_poker::actor::{RankingEntity, RankingMsg};
use actor_poker::model::StandingRow;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

use super::App;

const PAGE: &str = include_str!("admin.html");

/// A member as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberRow {
    /// Name.
    pub name: String,
    /// Cluster address.
    pub addr: String,
    /// `up`, `suspect`, `down`, `left`, or `self`.
    pub state: String,
}

/// A supervised child as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChildRow {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Node it runs on.
    pub node: Option<String>,
    /// `live`, `failed` or `removed`.
    pub status: String,
}

/// A flag as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlagRow {
    /// The flag and its gates.
    #[serde(flatten)]
    pub flag: FlagJson,
    /// `enabled(name)` on this node, now.
    pub enabled: bool,
    /// The version this node's cache holds.
    pub version: u64,
}

/// A tournament as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TournamentRow {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// `running` or `finished`.
    pub status: String,
    /// Hands played.
    pub hands: u64,
    /// Players.
    pub players: u32,
    /// Node running its ranking actor.
    pub ranking_node: Option<String>,
}

/// `GET /api/state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StateJson {
    /// This node.
    pub node: String,
    /// Members, this node included.
    pub members: Vec<MemberRow>,
    /// Children of the supervisor `poker`, by id.
    pub children: Vec<ChildRow>,
    /// Children running per node.
    pub children_per_node: BTreeMap<String, usize>,
    /// Registry names and their nodes.
    pub registry: BTreeMap<String, String>,
    /// Flags.
    pub flags: Vec<FlagRow>,
    /// Tournaments.
    pub tournaments: Vec<TournamentRow>,
    /// Flags can be changed with a token.
    pub editable: bool,
}

fn metrics_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// The page, API and metrics of `app` (`token`: allows flag changes).
pub fn router(app: App, token: Option<String>) -> Router {
    let _ = metrics_handle();
    let mut r = Router::new()
        .route("/", get(page))
        .route("/api/state", get(state))
        .route("/api/standings/{id}", get(standings))
        .route("/metrics", get(metrics))
        .with_state((app.clone(), token.is_some()));
    if let Some(t) = token {
        r = r.nest(
            "/api",
            actor_flags::admin::router(app.flags.clone(), AdminAuth::Token(t)),
        );
    }
    r
}

type St = State<(App, bool)>;

async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

fn member_state(s: MemberState) -> &'static str {
    match s {
        MemberState::Up => "up",
        MemberState::Suspect => "suspect",
        MemberState::Down => "down",
        MemberState::Left => "left",
    }
}

/// Everything the page shows, from this node's view.
pub async fn collect(app: &App, editable: bool) -> StateJson {
    let me = app.node.identity().clone();
    let mut members = vec![MemberRow {
        name: me.name.clone(),
        addr: me.addr.to_string(),
        state: "self".into(),
    }];
    if let Ok(ms) = app.node.members().await {
        members.extend(ms.into_iter().map(|m| MemberRow {
            name: m.node.name,
            addr: m.node.addr.to_string(),
            state: member_state(m.state).into(),
        }));
    }
    let children: Vec<ChildRow> = app
        .dsup
        .which_children()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| ChildRow {
            id: c.id,
            kind: c.kind,
            node: c.node,
            status: format!("{:?}", c.status).to_lowercase(),
        })
        .collect();
    let mut children_per_node = BTreeMap::new();
    for c in &children {
        if let Some(n) = &c.node {
            *children_per_node.entry(n.clone()).or_insert(0) += 1;
        }
    }
    let registry: BTreeMap<String, String> = app.dsup.registry().owners().into_iter().collect();
    let flags = app
        .flags
        .all_flags()
        .iter()
        .map(|f| FlagRow {
            flag: FlagJson::from(f),
            enabled: app.flags.enabled(&f.name),
            version: app.flags.version(&f.name),
        })
        .collect();
    let tournaments = app
        .store
        .tournaments()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| TournamentRow {
            ranking_node: registry.get(&actor_poker::child_id(t.id)).cloned(),
            id: t.id,
            name: t.name,
            status: t.status.as_str().into(),
            hands: t.seq,
            players: t.players,
        })
        .collect();
    StateJson {
        node: me.name,
        members,
        children,
        children_per_node,
        registry,
        flags,
        tournaments,
        editable,
    }
}

async fn state(State((app, editable)): St) -> Json<StateJson> {
    Json(collect(&app, editable).await)
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<u32>,
}

async fn standings(
    State((app, _)): St,
    Path(id): Path<u64>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<StandingRow>>, (StatusCode, String)> {
    let limit = q.limit.unwrap_or(20).min(1000);
    let child = actor_poker::child_id(id);
    if app.dsup.lookup_child(&child).is_some() {
        let ranking = app.dsup.entity::<RankingEntity>(child);
        match ranking
            .call(
                |r| RankingMsg::Standings(0, limit, r),
                Duration::from_secs(2),
            )
            .await
        {
            Ok(rows) => return Ok(Json(rows)),
            Err(e) => {
                tracing::debug!(tournament = id, error = %e, "live standings unavailable; reading the stored ones")
            }
        }
    }
    let rows = app
        .store
        .final_standings(id)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(rows.into_iter().take(limit as usize).collect()))
}

async fn metrics(State((app, _)): St) -> Response {
    let Some(handle) = metrics_handle() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder").into_response();
    };
    app.flags.publish_metrics();
    let s = collect(&app, false).await;
    for state in ["up", "suspect", "down", "left"] {
        let n = s.members.iter().filter(|m| m.state == state).count();
        metrics::gauge!("cluster_members", "state" => state).set(n as f64);
    }
    let local = s
        .children_per_node
        .get(&s.node)
        .copied()
        .unwrap_or_default();
    metrics::gauge!("dsup_children_local").set(local as f64);
    metrics::gauge!("dsup_children_running")
        .set(s.children.iter().filter(|c| c.node.is_some()).count() as f64);
    metrics::gauge!("registry_names").set(s.registry.len() as f64);
    metrics::gauge!("flags").set(s.flags.len() as f64);
    for status in ["running", "finished"] {
        let n = s.tournaments.iter().filter(|t| t.status == status).count();
        metrics::gauge!("poker_tournaments", "status" => status).set(n as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
