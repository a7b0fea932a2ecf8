//! Idle connections: a connection with no request in flight for the idle timeout is
//! closed, whatever its protocol. A request is in flight from the moment hyper hands it to
//! the router until its response body has been sent (or dropped); HTTP/2 pings and bytes
//! of an unfinished request head do not count as activity.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::caps::Slot;
use super::Edge;

/// Requests in flight on one connection, and when the last one ended.
pub struct Activity(Mutex<(usize, Instant)>);

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity(Mutex::new((0, Instant::now()))))
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
        Busy(self.clone())
    }

    /// `None` while a request is in flight, else since when the connection is idle.
    fn idle_since(&self) -> Option<Instant> {
        let (in_flight, since) = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        (in_flight == 0).then_some(since)
    }
}

/// One request in flight; dropping it ends the request.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        state.0 = state.0.saturating_sub(1);
        state.1 = Instant::now();
    }
}

/// The connection's service, marking each request in flight until its body is done.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Tracked { inner, activity }
    }
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for Tracked<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let busy = self.activity.begin();
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| TrackedBody { inner, _busy: busy }))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped.
pub struct TrackedBody<B> {
    inner: B,
    _busy: Busy,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's stream (TLS already established): reads end (EOF) once the connection
/// has been idle for `idle`, which makes hyper close it. Holds the connection's [`Slot`].
pub struct IdleStream<IO> {
    inner: IO,
    activity: Arc<Activity>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    closed: bool,
    edge: Arc<Edge>,
    _slot: Slot,
}

impl<IO> IdleStream<IO> {
    pub fn new(
        inner: IO,
        activity: Arc<Activity>,
        idle: Duration,
        edge: Arc<Edge>,
        slot: Slot,
    ) -> Self {
        IdleStream {
            inner,
            activity,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            closed: false,
            edge,
            _slot: slot,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for IdleStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        if let ready @ Poll::Ready(_) = Pin::new(&mut this.inner).poll_read(cx, buf) {
            return ready;
        }
        // Waiting for the peer: re-arm the timer until the connection has been idle long
        // enough, then end the stream.
        while this.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match this.activity.idle_since() {
                Some(since) if since + this.idle <= now => {
                    this.closed = true;
                    this.edge.note_idle_close();
                    return Poll::Ready(Ok(()));
                }
                Some(since) => this.timer.as_mut().reset(since + this.idle),
                None => this.timer.as_mut().reset(now + this.idle),
            }
        }
        Poll::Pending
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for IdleStream<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
