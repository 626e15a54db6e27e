//! The stream forms of KV, with the `d1` feature: `get(..).stream()`,
//! `get(..).stream_with_metadata()` and `put_stream`, taking and returning the
//! `web_sys::ReadableStream` that `worker::kv` uses, so Worker code written against `KvStore`
//! compiles unchanged.
//!
//! A value is stored whole (in parts when long), so a stream is a view of whole values: a stream
//! out is made from the value's bytes, and a stream in is read to its end before the put.
//!
//! Streams are JS objects: only a Worker can make or read one. Elsewhere these methods exist, so
//! shared code compiles, and return [`Error::Stream`] without calling JS (which would panic).

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::web_sys::ReadableStream;

use crate::backend::{Backend, Value};
use crate::error::{Error, Operation};
use crate::get::GetOptionsBuilder;
use crate::limits;
use crate::namespace::D1Namespace;
use crate::put::PutOptionsBuilder;

impl<B: Backend> GetOptionsBuilder<B> {
    /// The value as a stream of its bytes; `None` if missing or expired. Workers only (see
    /// the module docs).
    pub async fn stream(self) -> Result<Option<ReadableStream>, Error> {
        let key = self.key.clone();
        js::available(key.as_str())?;
        let bytes = self.bytes().await?;
        bytes
            .map(|bytes| js::stream_of(key.as_str(), &bytes))
            .transpose()
    }

    /// The value as a stream of its bytes, with its metadata; `(None, None)` if missing.
    /// Workers only (see the module docs).
    pub async fn stream_with_metadata<M: DeserializeOwned>(
        self,
    ) -> Result<(Option<ReadableStream>, Option<M>), Error> {
        let key = self.key.clone();
        js::available(key.as_str())?;
        let (bytes, metadata) = self.bytes_with_metadata::<M>().await?;
        let stream = bytes
            .map(|bytes| js::stream_of(key.as_str(), &bytes))
            .transpose()?;
        Ok((stream, metadata))
    }
}

impl<B: Backend> D1Namespace<B> {
    /// Writes the bytes of a stream, read to its end at `execute`; they read back as
    /// `put_bytes` bytes do. Workers only (see the module docs).
    pub fn put_stream(
        &self,
        key: &str,
        value: ReadableStream,
    ) -> Result<PutStreamOptionsBuilder<B>, Error> {
        Ok(PutStreamOptionsBuilder {
            put: self.put_value(key, Value::Blob(Vec::new())),
            stream: value,
        })
    }
}

/// Options of a `put_stream`; made by [`D1Namespace::put_stream`], with the options of
/// [`PutOptionsBuilder`]. Nothing is read or written until `.execute().await` (or `.await`).
#[derive(Debug)]
#[must_use = "a put does nothing until you .execute().await (or .await) it"]
pub struct PutStreamOptionsBuilder<B> {
    /// The put the stream's bytes go to, with every option but the value.
    put: PutOptionsBuilder<B>,
    stream: ReadableStream,
}

impl<B: Backend> PutStreamOptionsBuilder<B> {
    /// Expire at this time, in seconds since the Unix epoch; it must be in the future (K14).
    pub fn expiration(mut self, expiration: u64) -> Self {
        self.put = self.put.expiration(expiration);
        self
    }

    /// Expire this many seconds from now (K14); wins over [`expiration`](Self::expiration).
    pub fn expiration_ttl(mut self, expiration_ttl: u64) -> Self {
        self.put = self.put.expiration_ttl(expiration_ttl);
        self
    }

    /// Metadata stored with the value: any JSON of at most 1024 bytes (K10, K11); `null` means
    /// none.
    pub fn metadata<T: Serialize>(mut self, metadata: T) -> Result<Self, Error> {
        self.put = self.put.metadata(metadata)?;
        Ok(self)
    }

    /// Reads the stream to its end, then writes the entry as `put_bytes` does.
    pub async fn execute(self) -> Result<(), Error> {
        // A bad key fails before the stream is read, as for every other put.
        limits::check_key(Operation::Put, self.put.key())?;
        let bytes = js::read_to_end(self.put.key(), self.stream).await?;
        self.put.value(Value::Blob(bytes)).execute().await
    }
}

/// Not `Send`, as workers-rs's own: the future holds the JS stream.
impl<B: Backend + 'static> IntoFuture for PutStreamOptionsBuilder<B> {
    type Output = Result<(), Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

/// The JS side of streams, in a Worker.
#[cfg(target_arch = "wasm32")]
mod js {
    use worker::js_sys::{ArrayBuffer, Uint8Array};
    use worker::wasm_bindgen::{JsCast, JsValue};
    use worker::wasm_bindgen_futures::JsFuture;
    use worker::web_sys::{ReadableStream, Response};

    use crate::error::Error;

    pub(super) fn available(_key: &str) -> Result<(), Error> {
        Ok(())
    }

    /// A stream of `bytes`, as a `Response` body (which copies them into JS).
    pub(super) fn stream_of(key: &str, bytes: &[u8]) -> Result<ReadableStream, Error> {
        let body = Uint8Array::from(bytes);
        let response =
            Response::new_with_opt_js_u8_array(Some(&body)).map_err(|e| stream_error(key, &e))?;
        response.body().ok_or_else(|| Error::Stream {
            key: key.to_owned(),
            message: "the value's Response has no body".to_owned(),
        })
    }

    /// Every byte of `stream`, read through a `Response` (which reads it in JS, chunk by chunk).
    pub(super) async fn read_to_end(key: &str, stream: ReadableStream) -> Result<Vec<u8>, Error> {
        let response = Response::new_with_opt_readable_stream(Some(&stream))
            .map_err(|e| stream_error(key, &e))?;
        let promise = response.array_buffer().map_err(|e| stream_error(key, &e))?;
        let buffer = JsFuture::from(promise)
            .await
            .map_err(|e| stream_error(key, &e))?;
        let buffer = buffer
            .dyn_into::<ArrayBuffer>()
            .map_err(|e| stream_error(key, &e))?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }

    fn stream_error(key: &str, error: &JsValue) -> Error {
        let message = match error.dyn_ref::<worker::js_sys::Error>() {
            Some(error) => String::from(error.message()),
            None => error.as_string().unwrap_or_else(|| format!("{error:?}")),
        };
        Error::Stream {
            key: key.to_owned(),
            message,
        }
    }
}

/// Outside a Worker there is no JS to make or read a stream: an error, never a call that panics.
#[cfg(not(target_arch = "wasm32"))]
mod js {
    use worker::web_sys::ReadableStream;

    use crate::error::Error;

    pub(super) fn available(key: &str) -> Result<(), Error> {
        Err(not_in_a_worker(key))
    }

    pub(super) fn stream_of(key: &str, _bytes: &[u8]) -> Result<ReadableStream, Error> {
        Err(not_in_a_worker(key))
    }

    pub(super) async fn read_to_end(key: &str, _stream: ReadableStream) -> Result<Vec<u8>, Error> {
        Err(not_in_a_worker(key))
    }

    fn not_in_a_worker(key: &str) -> Error {
        Error::Stream {
            key: key.to_owned(),
            message: "streams are JS objects and need a Worker; natively, use bytes() or \
                      put_bytes()"
                .to_owned(),
        }
    }
}

#[cfg(all(test, feature = "sqlite", not(target_arch = "wasm32")))]
mod tests {
    use worker::wasm_bindgen::{JsCast, JsValue};

    use super::*;
    use crate::SqliteBackend;

    /// Natively the stream forms compile and answer with an error naming the key, never a call
    /// into JS (which panics outside a Worker).
    #[tokio::test]
    async fn stream_forms_outside_a_worker_are_errors_not_panics() {
        let kv = D1Namespace::new(SqliteBackend::open_in_memory().unwrap());
        kv.put("k", "v").unwrap().execute().await.unwrap();
        let not_in_a_worker = |result: Result<_, Error>| matches!(result, Err(Error::Stream { key, .. }) if key == "k");
        assert!(not_in_a_worker(kv.get("k").stream().await.map(drop)));
        assert!(not_in_a_worker(
            kv.get("k").stream_with_metadata::<String>().await.map(drop)
        ));
        // The only stream a native program can hold: a cast of a constant JS value.
        let stream: ReadableStream = JsValue::UNDEFINED.unchecked_into();
        let put = kv.put_stream("k", stream).unwrap().metadata("m").unwrap();
        assert!(not_in_a_worker(put.execute().await));
        assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
    }
}
