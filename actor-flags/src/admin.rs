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
//!
//! Invalid names, ratios or targets answer 400 with the error; a store that is down answers 503.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{Flag, FlagError, Flags, Gate, GateKey};

/// Who may use the admin API.
#[derive(Debug, Clone)]
pub enum AdminAuth {
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl AdminAuth {
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        match self {
            AdminAuth::Token(t) => value
                .strip_prefix("Bearer ")
                .is_some_and(|given| bool::from(given.as_bytes().ct_eq(t.as_bytes()))),
            AdminAuth::Basic { user, password } => {
                let expected = format!("{user}:{password}");
                value
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .is_some_and(|given| bool::from(given.as_slice().ct_eq(expected.as_bytes())))
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
    Path(name): Path<String>,
    Json(b): Json<Enabled>,
) -> ApiResult {
    if b.enabled {
        flags.enable(&name).await?;
    } else {
        flags.disable(&name).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn set_actor(
    State(flags): State<Flags>,
    Path((name, id)): Path<(String, String)>,
    Json(b): Json<Enabled>,
) -> ApiResult {
    flags.set_for_actor(&name, &id, b.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_group(
    State(flags): State<Flags>,
    Path((name, group)): Path<(String, String)>,
    Json(b): Json<Enabled>,
) -> ApiResult {
    flags.set_for_group(&name, &group, b.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_percentage(
    State(flags): State<Flags>,
    Path(name): Path<String>,
    Json(p): Json<Percentage>,
) -> ApiResult {
    match p.of.as_str() {
        "time" => flags.enable_percentage_of_time(&name, p.ratio).await?,
        "actors" => flags.enable_percentage_of_actors(&name, p.ratio).await?,
        other => {
            return Err(ApiError(FlagError::InvalidTarget(format!(
                "percentage of {other:?}: use \"time\" or \"actors\""
            ))))
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_boolean(State(flags): State<Flags>, Path(name): Path<String>) -> ApiResult {
    flags.clear_gate(&name, &GateKey::Boolean).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_actor(
    State(flags): State<Flags>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    flags.clear_gate(&name, &GateKey::Actor(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_group(
    State(flags): State<Flags>,
    Path((name, group)): Path<(String, String)>,
) -> ApiResult {
    flags.clear_gate(&name, &GateKey::Group(group)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_percentage(State(flags): State<Flags>, Path(name): Path<String>) -> ApiResult {
    flags.clear_gate(&name, &GateKey::Percentage).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_flag(State(flags): State<Flags>, Path(name): Path<String>) -> ApiResult {
    flags.clear(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn authenticate(
    State(auth): State<AdminAuth>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    if auth.allows(request.headers()) {
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
        .with_state(flags)
        .layer(middleware::from_fn_with_state(auth, authenticate))
}
