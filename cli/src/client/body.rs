//! Request bodies (empty, in-memory, streamed from a reader) and a reader for
//! streamed response bodies.
//!
//! Owns only the glue between tokio readers and hyper bodies; no endpoints.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

/// The body type of every request the client sends.
pub type ReqBody = UnsyncBoxBody<Bytes, io::Error>;

pub fn empty() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body streamed from `reader` in 64 KiB chunks. With `len`, hyper sends a
/// `Content-Length`; without, it uses chunked transfer encoding.
pub fn reader<R>(reader: R, len: Option<u64>) -> ReqBody
where
    R: AsyncRead + Send + Unpin + 'static,
{
    ReaderBody {
        reader,
        buf: vec![0; 64 * 1024],
        remaining: len,
        done: false,
    }
    .boxed_unsync()
}

struct ReaderBody<R> {
    reader: R,
    buf: Vec<u8>,
    remaining: Option<u64>,
    done: bool,
}

impl<R: AsyncRead + Unpin> Body for ReaderBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut rb = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.reader).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    this.done = true;
                    if this.remaining.is_some_and(|r| r > 0) {
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "input ended before its announced length",
                        ))));
                    }
                    return Poll::Ready(None);
                }
                if let Some(r) = this.remaining.as_mut() {
                    *r = r.saturating_sub(n as u64);
                }
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(rb.filled())))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.remaining == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A streamed response body, read chunk by chunk.
pub struct ResponseStream {
    body: Incoming,
}

impl ResponseStream {
    pub(crate) fn new(body: Incoming) -> Self {
        ResponseStream { body }
    }

    /// The next chunk of data, or `None` at the end of the body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, hyper::Error> {
        while let Some(frame) = self.body.frame().await {
            if let Ok(data) = frame?.into_data()
                && !data.is_empty()
            {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}
