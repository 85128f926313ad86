//! The wire codec: serde values in a small versioned MessagePack envelope. The codec itself is
//! `actor_core_base::codec` (pure, so the cluster's protocol cores encode with it too); this
//! module re-exports it and adds the support code of `#[derive(RemoteMessage)]`.

pub use actor_core_base::codec::*;

/// Support code for `#[derive(RemoteMessage)]`; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::time::Duration;

    use ractor::concurrency::oneshot;
    use ractor::message::{BoxedDowncastErr, SerializedMessage};
    use ractor::RpcReplyPort;
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use actor_core_base::codec::{count_failure, CodecError};

    /// `Vec<u8>` fields travel as MessagePack `bin` (one copy), not as an array of integers
    /// (one encoded integer per byte); the decoder accepts both.
    pub use serde_bytes::{ByteBuf, Bytes};

    fn encode_args<A: Serialize>(variant: &str, args: &A) -> Result<Vec<u8>, BoxedDowncastErr> {
        actor_core_base::codec::encode(args).map_err(|e| {
            tracing::warn!(variant, error = %e, "cannot encode a remote message");
            BoxedDowncastErr
        })
    }

    /// Encodes a cast.
    pub fn cast<A: Serialize>(
        variant: &str,
        args: &A,
    ) -> Result<SerializedMessage, BoxedDowncastErr> {
        Ok(SerializedMessage::Cast {
            variant: variant.to_owned(),
            args: encode_args(variant, args)?,
            metadata: None,
        })
    }

    /// Encodes a call: the typed reply port is bridged to a byte port by a task that decodes
    /// the answer. An error answer or an undecodable one drops the typed port, so the caller
    /// sees `CallResult::SenderError` at once.
    pub fn call<R, A>(
        variant: &str,
        args: &A,
        port: RpcReplyPort<R>,
    ) -> Result<SerializedMessage, BoxedDowncastErr>
    where
        R: DeserializeOwned + Send + 'static,
        A: Serialize,
    {
        let args = encode_args(variant, args)?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| BoxedDowncastErr)?;
        let timeout = port.get_timeout();
        let (tx, rx) = oneshot::<Vec<u8>>();
        let variant_owned = variant.to_owned();
        handle.spawn(async move {
            let bytes = match timeout {
                Some(t) => match tokio::time::timeout(t, rx).await {
                    Ok(Ok(b)) => b,
                    _ => return,
                },
                None => match rx.await {
                    Ok(b) => b,
                    Err(_) => return,
                },
            };
            match actor_core_base::codec::decode::<R>(&bytes) {
                Ok(value) => {
                    let _ = port.send(value);
                }
                Err(CodecError::Remote(text)) => {
                    tracing::debug!(variant = %variant_owned, error = %text, "remote call answered with an error");
                }
                Err(e) => count_failure(&e),
            }
        });
        let reply = match timeout {
            Some(t) => RpcReplyPort::from((tx, t)),
            None => RpcReplyPort::from(tx),
        };
        Ok(SerializedMessage::Call {
            variant: variant.to_owned(),
            args,
            reply,
            metadata: None,
        })
    }

    /// Decodes the fields of a variant.
    pub fn decode_args<A: DeserializeOwned>(
        variant: &str,
        args: &[u8],
    ) -> Result<A, BoxedDowncastErr> {
        actor_core_base::codec::decode::<A>(args).map_err(|e| {
            tracing::warn!(variant, "remote message fields failed to decode");
            count_failure(&e);
            BoxedDowncastErr
        })
    }

    /// Answers a call that cannot be decoded with an error frame, so the caller fails fast.
    pub fn reject_call(reply: RpcReplyPort<Vec<u8>>, variant: &str) {
        let text = format!("the receiver could not decode call {variant:?}");
        let _ = reply.send(actor_core_base::codec::Codec::global().encode_error(&text));
    }

    /// Counts and reports a variant this build does not know.
    pub fn unknown_variant(type_name: &'static str, variant: &str) -> BoxedDowncastErr {
        count_failure(&CodecError::UnknownVariant {
            type_name,
            variant: variant.to_owned(),
        });
        BoxedDowncastErr
    }

    /// Bridges the byte reply port of an incoming call to a typed port the handler answers.
    /// If the handler drops its port, the caller is answered with an error frame.
    pub fn reply_port<R>(reply: RpcReplyPort<Vec<u8>>) -> Result<RpcReplyPort<R>, BoxedDowncastErr>
    where
        R: Serialize + Send + 'static,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| BoxedDowncastErr)?;
        let timeout: Option<Duration> = reply.get_timeout();
        let (tx, rx) = oneshot::<R>();
        handle.spawn(async move {
            let answer = match timeout {
                Some(t) => tokio::time::timeout(t, rx).await.ok().and_then(Result::ok),
                None => rx.await.ok(),
            };
            let codec = actor_core_base::codec::Codec::global();
            let frame = match answer {
                Some(value) => codec.encode(&value).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot encode a call reply");
                    codec.encode_error(&e.to_string())
                }),
                None => codec.encode_error("the receiver dropped the reply port"),
            };
            let _ = reply.send(frame);
        });
        Ok(match timeout {
            Some(t) => RpcReplyPort::from((tx, t)),
            None => RpcReplyPort::from(tx),
        })
    }
}
