//! The HTTP admin API (axum, JSON): list and read flags, set and clear gates. Every route needs
//! authentication: a bearer token or HTTP basic auth (fun_with_flags_ui has none).
//!
//! | method and path | body | does |
//! |---|---|---|
//! | `GET /flags` | | every flag with its gates |
//! | `GET /flags/{name}` | | one flag (404 if it has no gates) |
//! | `PUT /flags/{name}/boolean` | `{"enabled": bool}` | sets the boolean gate |
//! | `PUT /flags/{name}/actors/{id}` | `{"enabled": bool}` | sets an actor gate |
//! | `PUT /flags/{name}/groups/{group}` | `{"enabled": bool}` | sets a group gate |
//! | `PUT /flags/{name}/percentage` | `{"of": "time" or "actors", "ratio": r}` | sets the percentage gate |
//! | `DELETE /flags/{name}/boolean`, `/actors/{id}`, `/groups/{group}`, `/percentage` | | clears a gate |
//! | `DELETE /flags/{name}` | | clears the flag |
//! | `GET /flags/{name}/history?limit=N` | | the newest N (default 100, at most 1,000) recorded writes, newest first |
//!
//! Invalid names, ratios or targets answer 400 with the error; a store that is down answers 503.
//! Every write is recorded in the flag's history as made by the caller's label: the label of
//! the token it presented ([`AdminAuth::Tokens`]; `admin` for [`AdminAuth::Token`]), or the
//! basic-auth user.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::store::HistoryEntry;
use crate::{Flag, FlagError, Flags, Gate, GateKey};

/// The label writes are recorded with under [`AdminAuth::Token`].
pub const TOKEN_LABEL: &str = "admin";

/// Who may use the admin API, and the label their writes are recorded with.
#[derive(Debug, Clone)]
pub enum AdminAuth {
    /// `Authorization: Bearer <token>`; writes are recorded as [`TOKEN_LABEL`].
    Token(String),
    /// `Authorization: Bearer <token>` with any of these tokens; writes are recorded with the
    /// token's label.
    Tokens(Vec<AdminToken>),
    /// `Authorization: Basic base64(user:password)`; writes are recorded as the user.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

/// A bearer token and the label of whoever holds it.
#[derive(Debug, Clone)]
pub struct AdminToken {
    /// Recorded in the history with every write made with the token (e.g. `alice`, `deploy`).
    pub label: String,
    /// The secret.
    pub token: String,
}

/// The caller's label, put into the request by the authentication layer.
#[derive(Debug, Clone)]
struct Caller(String);

impl AdminAuth {
    /// The caller's label if the request authenticates.
    fn caller(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())?;
        // An empty token never matches: it would let in every `Bearer ` header.
        let bearer = |t: &str| {
            !t.is_empty()
                && value
                    .strip_prefix("Bearer ")
                    .is_some_and(|given| bool::from(given.as_bytes().ct_eq(t.as_bytes())))
        };
        match self {
            AdminAuth::Token(t) => bearer(t).then(|| TOKEN_LABEL.to_owned()),
            // Every token is compared, so the time taken does not tell which one matched.
            AdminAuth::Tokens(tokens) => tokens
                .iter()
                .fold(None, |found, t| {
                    let hit = bearer(&t.token);
                    found.or(hit.then_some(t))
                })
                .map(|t| t.label.clone()),
            AdminAuth::Basic { user, password } => {
                let expected = format!("{user}:{password}");
                value
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .is_some_and(|given| bool::from(given.as_slice().ct_eq(expected.as_bytes())))
                    .then(|| user.clone())
            }
        }
    }
}

/// A gate as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GateJson {
    /// The boolean gate.
    Boolean {
        /// On or off.
        enabled: bool,
    },
    /// An actor gate.
    Actor {
        /// The actor id.
        id: String,
        /// On or off.
        enabled: bool,
    },
    /// A group gate.
    Group {
        /// The group.
        name: String,
        /// On or off.
        enabled: bool,
    },
    /// The %-of-time gate.
    PercentageOfTime {
        /// The ratio.
        ratio: f64,
    },
    /// The %-of-actors gate.
    PercentageOfActors {
        /// The ratio.
        ratio: f64,
    },
}

impl From<&Gate> for GateJson {
    fn from(g: &Gate) -> Self {
        match g {
            Gate::Boolean(enabled) => GateJson::Boolean { enabled: *enabled },
            Gate::Actor { id, enabled } => GateJson::Actor {
                id: id.clone(),
                enabled: *enabled,
            },
            Gate::Group { name, enabled } => GateJson::Group {
                name: name.clone(),
                enabled: *enabled,
            },
            Gate::PercentageOfTime(r) => GateJson::PercentageOfTime { ratio: *r },
            Gate::PercentageOfActors(r) => GateJson::PercentageOfActors { ratio: *r },
        }
    }
}

/// A flag as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagJson {
    /// The flag's name.
    pub name: String,
    /// Its gates.
    pub gates: Vec<GateJson>,
}

impl From<&Flag> for FlagJson {
    fn from(f: &Flag) -> Self {
        Self {
            name: f.name.clone(),
            gates: f.gates.iter().map(GateJson::from).collect(),
        }
    }
}

/// A gate key as JSON (`{"type": "actor", "id": "user:1"}`, `{"type": "percentage"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GateKeyJson {
    /// The boolean gate.
    Boolean,
    /// An actor gate.
    Actor {
        /// The actor id.
        id: String,
    },
    /// A group gate.
    Group {
        /// The group.
        name: String,
    },
    /// The percentage gate (of time or of actors).
    Percentage,
}

impl From<&GateKey> for GateKeyJson {
    fn from(k: &GateKey) -> Self {
        match k {
            GateKey::Boolean => GateKeyJson::Boolean,
            GateKey::Actor(id) => GateKeyJson::Actor { id: id.clone() },
            GateKey::Group(name) => GateKeyJson::Group { name: name.clone() },
            GateKey::Percentage => GateKeyJson::Percentage,
        }
    }
}

/// A recorded write as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryJson {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who (the caller's label).
    pub by: String,
    /// The gate written.
    pub gate: GateKeyJson,
    /// Its value before (`null`: it did not exist).
    pub old: Option<GateJson>,
    /// Its value after (`null`: cleared).
    pub new: Option<GateJson>,
}

impl From<&HistoryEntry> for HistoryJson {
    fn from(e: &HistoryEntry) -> Self {
        Self {
            at_ms: e.at_ms,
            by: e.by.clone(),
            gate: GateKeyJson::from(&e.gate),
            old: e.old.as_ref().map(GateJson::from),
            new: e.new.as_ref().map(GateJson::from),
        }
    }
}

/// `?limit=N`.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

/// `{"enabled": bool}`.
#[derive(Debug, Deserialize)]
struct Enabled {
    enabled: bool,
}

/// `{"of": "time" | "actors", "ratio": r}`.
#[derive(Debug, Deserialize)]
struct Percentage {
    of: String,
    ratio: f64,
}

struct ApiError(FlagError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            FlagError::InvalidName(_)
            | FlagError::InvalidRatio(_)
            | FlagError::InvalidTarget(_) => StatusCode::BAD_REQUEST,
            FlagError::Store(_) | FlagError::Corrupt(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.0.to_string() })),
        )
            .into_response()
    }
}

impl From<FlagError> for ApiError {
    fn from(e: FlagError) -> Self {
        Self(e)
    }
}

type ApiResult = Result<StatusCode, ApiError>;

async fn list(State(flags): State<Flags>) -> Json<Vec<FlagJson>> {
    Json(flags.all_flags().iter().map(FlagJson::from).collect())
}

async fn read(State(flags): State<Flags>, Path(name): Path<String>) -> Response {
    match flags.get_flag(&name) {
        Some(f) => Json(FlagJson::from(&f)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "no such flag" })),
        )
            .into_response(),
    }
}

async fn set_boolean(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path(name): Path<String>,
    Json(b): Json<Enabled>,
) -> ApiResult {
    if b.enabled {
        flags.by(&by).enable(&name).await?;
    } else {
        flags.by(&by).disable(&name).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn set_actor(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path((name, id)): Path<(String, String)>,
    Json(b): Json<Enabled>,
) -> ApiResult {
    flags.by(&by).set_for_actor(&name, &id, b.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_group(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path((name, group)): Path<(String, String)>,
    Json(b): Json<Enabled>,
) -> ApiResult {
    flags
        .by(&by)
        .set_for_group(&name, &group, b.enabled)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_percentage(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path(name): Path<String>,
    Json(p): Json<Percentage>,
) -> ApiResult {
    match p.of.as_str() {
        "time" => {
            flags
                .by(&by)
                .enable_percentage_of_time(&name, p.ratio)
                .await?
        }
        "actors" => {
            flags
                .by(&by)
                .enable_percentage_of_actors(&name, p.ratio)
                .await?
        }
        other => {
            return Err(ApiError(FlagError::InvalidTarget(format!(
                "percentage of {other:?}: use \"time\" or \"actors\""
            ))))
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_boolean(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    flags.by(&by).clear_gate(&name, &GateKey::Boolean).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_actor(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    flags.by(&by).clear_gate(&name, &GateKey::Actor(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_group(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path((name, group)): Path<(String, String)>,
) -> ApiResult {
    flags
        .by(&by)
        .clear_gate(&name, &GateKey::Group(group))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_percentage(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    flags
        .by(&by)
        .clear_gate(&name, &GateKey::Percentage)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_flag(
    State(flags): State<Flags>,
    Extension(Caller(by)): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    flags.by(&by).clear(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn history(
    State(flags): State<Flags>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryJson>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    let entries = flags.history(&name, limit).await?;
    Ok(Json(entries.iter().map(HistoryJson::from).collect()))
}

async fn authenticate(
    State(auth): State<AdminAuth>,
    mut request: axum::extract::Request,
    next: Next,
) -> Response {
    if let Some(label) = auth.caller(request.headers()) {
        request.extensions_mut().insert(Caller(label));
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"flags\", Bearer")],
            Json(serde_json::json!({ "error": "authentication required" })),
        )
            .into_response()
    }
}

/// The admin API over `flags`, behind `auth`. Serve it with `axum::serve`, or nest it in your
/// own router.
pub fn router(flags: Flags, auth: AdminAuth) -> Router {
    Router::new()
        .route("/flags", get(list))
        .route("/flags/{name}", get(read).delete(clear_flag))
        .route(
            "/flags/{name}/boolean",
            put(set_boolean).delete(clear_boolean),
        )
        .route(
            "/flags/{name}/actors/{id}",
            put(set_actor).delete(clear_actor),
        )
        .route(
            "/flags/{name}/groups/{group}",
            put(set_group).delete(clear_group),
        )
        .route(
            "/flags/{name}/percentage",
            put(set_percentage).delete(clear_percentage),
        )
        .route("/flags/{name}/history", get(history))
        .with_state(flags)
        .layer(middleware::from_fn_with_state(auth, authenticate))
}
