//! A client middleware that holds each request until its time: the shared
//! shape of [`super::retry_after`] and [`super::pace`], which differ only in
//! how they tell that time and what they learn from the answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceExt as _};

/// When a request may go, and what its answer teaches.
pub trait Hold: Clone + Send + 'static {
    /// The instant `request` may go (`None`: now).
    fn until<R>(&self, request: &Request<R>) -> Option<Instant>;

    /// Sees the answer to a request.
    fn answered<B>(&self, _response: &Response<B>) {}
}

/// `inner`, each request held as `hold` says.
#[derive(Clone)]
pub struct Held<S, H> {
    pub inner: S,
    pub hold: H,
}

type Responding<B> = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

impl<S, H, R, B> Service<Request<R>> for Held<S, H>
where
    S: Service<Request<R>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    H: Hold,
    R: Send + 'static,
    B: 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Responding<B>;

    /// Readiness is the inner service's, checked once the wait is over.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<R>) -> Self::Future {
        let inner = self.inner.clone();
        let hold = self.hold.clone();
        let until = hold.until(&request);
        Box::pin(async move {
            if let Some(at) = until {
                tokio::time::sleep_until(at).await;
            }
            let response = inner.oneshot(request).await.map_err(Into::into)?;
            hold.answered(&response);
            Ok(response)
        })
    }
}
