//! The HTTP admin API: auth required, gates set and cleared through it land in the store and
//! the cache, invalid input is a 400.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actor_flags::admin::{router, AdminAuth, FlagJson, GateJson};
use actor_flags::store::SqlStore;
use actor_flags::Flags;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn flags() -> (Flags, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(&dir.path().join("admin.db"))
        .await
        .unwrap();
    (Flags::open(Arc::new(store)).await.unwrap(), dir)
}

#[tokio::test]
async fn token_auth_and_gate_editing() {
    let (flags, _dir) = flags().await;
    let app = router(flags.clone(), AdminAuth::Token("s3cret".into()));
    let ok = Some("Bearer s3cret");

    assert_eq!(
        call(&app, "GET", "/flags", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "GET", "/flags", Some("Bearer wrong"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &app,
            "PUT",
            "/flags/beta/boolean",
            None,
            Some(r#"{"enabled":true}"#)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !flags.enabled("beta"),
        "an unauthenticated write changed nothing"
    );

    assert_eq!(
        call(
            &app,
            "PUT",
            "/flags/beta/boolean",
            ok,
            Some(r#"{"enabled":true}"#)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert!(flags.enabled("beta"));
    assert_eq!(
        call(
            &app,
            "PUT",
            "/flags/beta/actors/user:1",
            ok,
            Some(r#"{"enabled":false}"#)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            &app,
            "PUT",
            "/flags/beta/groups/staff",
            ok,
            Some(r#"{"enabled":true}"#)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            &app,
            "PUT",
            "/flags/beta/percentage",
            ok,
            Some(r#"{"of":"actors","ratio":0.3}"#)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert!(!flags.enabled_for("beta", "user:1"));

    let (status, body) = call(&app, "GET", "/flags/beta", ok, None).await;
    assert_eq!(status, StatusCode::OK);
    let f: FlagJson = serde_json::from_str(&body).unwrap();
    assert_eq!(f.name, "beta");
    assert!(f.gates.contains(&GateJson::Boolean { enabled: true }));
    assert!(f.gates.contains(&GateJson::Actor {
        id: "user:1".into(),
        enabled: false
    }));
    assert!(f.gates.contains(&GateJson::Group {
        name: "staff".into(),
        enabled: true
    }));
    assert!(f
        .gates
        .contains(&GateJson::PercentageOfActors { ratio: 0.3 }));

    // Invalid input: a 400 with the reason, nothing changed.
    let (status, body) = call(
        &app,
        "PUT",
        "/flags/beta/percentage",
        ok,
        Some(r#"{"of":"time","ratio":1.5}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("ratio"), "{body}");
    assert_eq!(
        call(
            &app,
            "PUT",
            "/flags/bad-name/boolean",
            ok,
            Some(r#"{"enabled":true}"#)
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert!(
        call(&app, "PUT", "/flags/beta/boolean", ok, Some("not json"))
            .await
            .0
            .is_client_error()
    );

    // Clearing gates and the flag.
    assert_eq!(
        call(&app, "DELETE", "/flags/beta/actors/user:1", ok, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert!(flags.enabled_for("beta", "user:1"));
    assert_eq!(
        call(&app, "DELETE", "/flags/beta", ok, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, "GET", "/flags/beta", ok, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(!flags.enabled("beta"));
    let (_, list) = call(&app, "GET", "/flags", ok, None).await;
    assert_eq!(list, "[]");
}

#[tokio::test]
async fn basic_auth() {
    let (flags, _dir) = flags().await;
    let app = router(
        flags,
        AdminAuth::Basic {
            user: "admin".into(),
            password: "pw".into(),
        },
    );
    // "admin:pw" and "admin:no" in base64.
    assert_eq!(
        call(&app, "GET", "/flags", Some("Basic YWRtaW46cHc="), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", "/flags", Some("Basic YWRtaW46bm8="), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "GET", "/flags", Some("Basic !!!"), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn writes_are_recorded_with_the_callers_label_and_served_as_history() {
    use actor_flags::admin::{AdminToken, GateKeyJson, HistoryJson};
    let (flags, _dir) = flags().await;
    let app = router(
        flags.clone(),
        AdminAuth::Tokens(vec![
            AdminToken {
                label: "alice".into(),
                token: "a-token".into(),
            },
            AdminToken {
                label: "deploy".into(),
                token: "d-token".into(),
            },
        ]),
    );
    // An empty token lets nobody in.
    let empty = router(
        flags.clone(),
        AdminAuth::Tokens(vec![AdminToken {
            label: "nobody".into(),
            token: String::new(),
        }]),
    );
    assert_eq!(
        call(&empty, "GET", "/flags", Some("Bearer "), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let alice = Some("Bearer a-token");
    let deploy = Some("Bearer d-token");
    assert_eq!(
        call(
            &app,
            "GET",
            "/flags/beta/history",
            Some("Bearer nope"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let before = actor_flags::now_version() / 1_000_000;
    for (who, method, path, body) in [
        (
            alice,
            "PUT",
            "/flags/beta/boolean",
            Some(r#"{"enabled":true}"#),
        ),
        (
            deploy,
            "PUT",
            "/flags/beta/actors/user:9",
            Some(r#"{"enabled":false}"#),
        ),
        (alice, "DELETE", "/flags/beta/boolean", None),
    ] {
        let (status, body) = call(&app, method, path, who, body).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{method} {path}: {body}");
    }
    let after = actor_flags::now_version() / 1_000_000;
    let (status, body) = call(&app, "GET", "/flags/beta/history", deploy, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let h: Vec<HistoryJson> = serde_json::from_str(&body).unwrap();
    let got: Vec<(&str, GateKeyJson, Option<GateJson>, Option<GateJson>)> = h
        .iter()
        .map(|e| (e.by.as_str(), e.gate.clone(), e.old.clone(), e.new.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "alice",
                GateKeyJson::Boolean,
                Some(GateJson::Boolean { enabled: true }),
                None
            ),
            (
                "deploy",
                GateKeyJson::Actor {
                    id: "user:9".into()
                },
                None,
                Some(GateJson::Actor {
                    id: "user:9".into(),
                    enabled: false
                })
            ),
            (
                "alice",
                GateKeyJson::Boolean,
                None,
                Some(GateJson::Boolean { enabled: true })
            ),
        ],
        "newest first"
    );
    assert!(h
        .iter()
        .all(|e| (before..=after).contains(&(e.at_ms as u64))));
    let (_, body) = call(&app, "GET", "/flags/beta/history?limit=1", alice, None).await;
    let h: Vec<HistoryJson> = serde_json::from_str(&body).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        call(&app, "GET", "/flags/not-a-name/history", alice, None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}
