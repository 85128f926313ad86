//! The OpenFeature provider, through the OpenFeature SDK's own client, over a real SQLite store:
//! values, reasons, variants, flag metadata, errors, and the context's targeting key and groups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actor_flags::openfeature::FlagsProvider;
use actor_flags::{Flags, SqlStore};
use open_feature::{
    EvaluationContext, EvaluationErrorCode, EvaluationReason, FlagMetadataValue, OpenFeature,
};

async fn client(name: &str) -> (open_feature::Client, Flags, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(&dir.path().join("of.db")).await.unwrap();
    let flags = Flags::open(Arc::new(store)).await.unwrap();
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(name, FlagsProvider::new(flags.clone()))
        .await;
    (api.create_named_client(name), flags, dir)
}

fn user(id: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(id)
}

#[tokio::test]
async fn boolean_resolution_with_reasons_variants_and_versions() {
    let (client, flags, _dir) = client("reasons").await;
    flags.enable("everyone").await.unwrap();
    flags.disable("beta_only").await.unwrap();
    flags
        .set_for_group("beta_only", "beta", true)
        .await
        .unwrap();
    flags
        .set_for_actor("beta_only", "user:7", false)
        .await
        .unwrap();
    flags
        .enable_percentage_of_actors("rollout", 0.5)
        .await
        .unwrap();

    let d = client
        .get_bool_details("everyone", None, None)
        .await
        .unwrap();
    assert!(d.value);
    assert_eq!(d.reason, Some(EvaluationReason::Static));
    assert_eq!(d.variant.as_deref(), Some("on"));
    assert_eq!(
        d.flag_metadata.values.get("version"),
        Some(&FlagMetadataValue::Int(
            i64::try_from(flags.version("everyone")).unwrap()
        ))
    );
    assert_eq!(
        d.flag_metadata.values.get("gate"),
        Some(&FlagMetadataValue::String("boolean".into()))
    );

    // Groups from the context: a comma-separated string.
    let beta = user("user:1").with_custom_field("groups", "staff, beta");
    let d = client
        .get_bool_details("beta_only", Some(&beta), None)
        .await
        .unwrap();
    assert!(d.value);
    assert_eq!(d.reason, Some(EvaluationReason::TargetingMatch));
    assert_eq!(
        d.flag_metadata.values.get("gate"),
        Some(&FlagMetadataValue::String("group".into()))
    );
    // Or a Vec<String> in a struct field.
    let beta_vec = user("user:2").with_custom_field(
        "groups",
        open_feature::EvaluationContextFieldValue::new_struct(vec!["beta".to_string()]),
    );
    assert!(client
        .get_bool_value("beta_only", Some(&beta_vec), None)
        .await
        .unwrap());
    // The actor gate beats the group.
    let seven = user("user:7").with_custom_field("groups", "beta");
    let d = client
        .get_bool_details("beta_only", Some(&seven), None)
        .await
        .unwrap();
    assert!(!d.value);
    assert_eq!(d.reason, Some(EvaluationReason::TargetingMatch));
    assert_eq!(d.variant.as_deref(), Some("off"));
    // Not in the group: the boolean gate (off).
    let d = client
        .get_bool_details("beta_only", Some(&user("user:3")), None)
        .await
        .unwrap();
    assert_eq!((d.value, d.reason), (false, Some(EvaluationReason::Static)));

    // A percentage of actors: a split, the same answer as the native check.
    for i in 0..20 {
        let id = format!("user:{i}");
        let d = client
            .get_bool_details("rollout", Some(&user(&id)), None)
            .await
            .unwrap();
        assert_eq!(d.reason, Some(EvaluationReason::Split));
        assert_eq!(d.value, flags.enabled_for("rollout", id.as_str()));
    }
    // Without a targeting key, the %-of-actors gate does not apply: the default.
    let d = client
        .get_bool_details("rollout", None, None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (false, Some(EvaluationReason::Default))
    );
}

#[tokio::test]
async fn unknown_flags_and_other_types_are_errors_the_caller_defaults_on() {
    let (client, flags, _dir) = client("errors").await;
    flags.enable("a_bool").await.unwrap();
    let e = client
        .get_bool_details("reactionz", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    assert!(client
        .get_bool_value("reactionz", None, None)
        .await
        .unwrap_or(true));
    let e = client
        .get_bool_value("not a name", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    let e = client
        .get_string_value("a_bool", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);
    let e = client
        .get_int_value("a_bool", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);
    let e = client
        .get_float_value("a_bool", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);
    // The native cache counted the unknown name.
    assert_eq!(flags.unknown_checks().0, vec![("reactionz".to_owned(), 2)]);
    // A change is seen by the next resolution (the cache is the provider's state).
    flags.disable("a_bool").await.unwrap();
    assert!(!client.get_bool_value("a_bool", None, None).await.unwrap());
}
