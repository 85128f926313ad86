//! An [OpenFeature](https://openfeature.dev) provider over the cluster-cached flags (cargo
//! feature `openfeature`).
//!
//! An application codes against OpenFeature's client and gets this node's cache underneath:
//!
//! ```no_run
//! # async fn demo(flags: actor_flags::Flags) -> Result<(), Box<dyn std::error::Error>> {
//! use open_feature::{EvaluationContext, OpenFeature};
//!
//! let mut api = OpenFeature::singleton_mut().await;
//! api.set_provider(actor_flags::openfeature::FlagsProvider::new(flags)).await;
//! let client = api.create_client();
//! let ctx = EvaluationContext::default()
//!     .with_targeting_key("user:42")
//!     .with_custom_field("groups", "beta,staff");
//! let on = client.get_bool_value("new_checkout", Some(&ctx), None).await.unwrap_or(false);
//! # let _ = on; Ok(()) }
//! ```
//!
//! * The targeting key is the actor's id; the context field `groups` (the name can be changed
//!   with [`FlagsProvider::groups_field`]) lists the actor's groups, as a comma-separated string
//!   or a `Vec<String>` in a struct field. Without a targeting key the flag is checked without
//!   an actor (boolean and %-of-time gates; groups are ignored).
//! * Reasons: `TARGETING_MATCH` for an actor or group gate, `SPLIT` for a percentage gate,
//!   `STATIC` for the boolean gate, `DEFAULT` when the flag has gates and none applied. A flag
//!   that does not exist is the error `FLAG_NOT_FOUND` (the client answers the caller's
//!   default); a non-boolean request is `TYPE_MISMATCH`.
//! * The variant is `on` or `off`; the flag metadata holds `version` (the cached state's
//!   version) and `gate` (the deciding gate's kind, when one decided).
//!
//! The SDK's calls are async and take a lock: this is an adapter for code that wants the
//! vendor-neutral API. The hot path stays [`Flags::enabled`] or a [`crate::FlagHandle`].

use std::borrow::Cow;

use async_trait::async_trait;
use open_feature::provider::{FeatureProvider, ProviderMetadata, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue,
};

use crate::{validate_name, Evaluation, FlagActor, Flags, Reason};

/// The default context field that lists an actor's groups.
pub const GROUPS_FIELD: &str = "groups";

/// The OpenFeature provider over a node's [`Flags`].
#[derive(Debug, Clone)]
pub struct FlagsProvider {
    flags: Flags,
    metadata: ProviderMetadata,
    groups_field: String,
}

impl FlagsProvider {
    /// A provider over `flags` (named `actor-flags`).
    pub fn new(flags: Flags) -> Self {
        Self {
            flags,
            metadata: ProviderMetadata::new("actor-flags"),
            groups_field: GROUPS_FIELD.to_owned(),
        }
    }

    /// Reads the actor's groups from the context field `field` instead of `groups`.
    pub fn groups_field(mut self, field: impl Into<String>) -> Self {
        self.groups_field = field.into();
        self
    }

    fn evaluate(&self, flag_key: &str, ctx: &EvaluationContext) -> Evaluation {
        match ctx.targeting_key.as_deref() {
            Some(id) => {
                let actor = ContextActor {
                    id,
                    groups: ctx.custom_fields.get(&self.groups_field),
                };
                self.flags.evaluate_for(flag_key, &actor)
            }
            None => self.flags.evaluate(flag_key),
        }
    }
}

/// The actor an evaluation context describes.
struct ContextActor<'a> {
    id: &'a str,
    groups: Option<&'a EvaluationContextFieldValue>,
}

impl FlagActor for ContextActor<'_> {
    fn flag_id(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.id)
    }

    fn in_group(&self, group: &str) -> bool {
        match self.groups {
            Some(EvaluationContextFieldValue::String(s)) => s.split(',').any(|g| g.trim() == group),
            Some(EvaluationContextFieldValue::Struct(any)) => any
                .downcast_ref::<Vec<String>>()
                .is_some_and(|v| v.iter().any(|g| g == group)),
            _ => false,
        }
    }
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError {
        code,
        message: Some(message),
    }
}

fn type_mismatch<T>(flag_key: &str, kind: &str) -> EvaluationResult<T> {
    Err(error(
        EvaluationErrorCode::TypeMismatch,
        format!("{flag_key}: actor-flags flags are boolean, {kind} was asked for"),
    ))
}

#[async_trait]
impl FeatureProvider for FlagsProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        if validate_name(flag_key).is_err() {
            return Err(error(
                EvaluationErrorCode::FlagNotFound,
                format!("{flag_key:?} is not a flag name (letters, digits and underscores)"),
            ));
        }
        let e = self.evaluate(flag_key, evaluation_context);
        let reason = match e.reason {
            Reason::Static => EvaluationReason::Static,
            Reason::TargetingMatch => EvaluationReason::TargetingMatch,
            Reason::Split => EvaluationReason::Split,
            Reason::Default => EvaluationReason::Default,
            Reason::NotFound => {
                return Err(error(
                    EvaluationErrorCode::FlagNotFound,
                    format!("no flag {flag_key} in this node's cache"),
                ))
            }
        };
        let mut metadata = FlagMetadata::default();
        match i64::try_from(e.version) {
            Ok(v) => metadata.add_value("version", v),
            Err(_) => metadata.add_value("version", e.version.to_string()),
        }
        if let Some(g) = e.gate {
            metadata.add_value("gate", g.as_str());
        }
        Ok(ResolutionDetails {
            value: e.enabled,
            variant: Some(if e.enabled { "on" } else { "off" }.to_owned()),
            reason: Some(reason),
            flag_metadata: Some(metadata),
        })
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        type_mismatch(flag_key, "an integer")
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        type_mismatch(flag_key, "a float")
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        type_mismatch(flag_key, "a string")
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        type_mismatch(flag_key, "a struct")
    }
}
