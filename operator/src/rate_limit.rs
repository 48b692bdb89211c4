//! Client-side rate limiting of API requests, like kube-controller-manager's `--kube-api-qps`
//! and `--kube-api-burst`: a token bucket of `burst` tokens refilled at `qps` per second; a
//! request that finds the bucket empty waits for its token. The API server sees a bounded
//! request rate whatever the number of agents, and a burst (a restart's first reconciles) is
//! spread out rather than refused by its priority and fairness.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;
use tower::{Layer, Service};

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    qps: f64,
    burst: f64,
}

impl Bucket {
    /// Takes a token; returns how long to wait before the request may go.
    fn take(&mut self, now: Instant) -> Duration {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.qps;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.qps) }
    }
}

/// Limits the requests of the services it wraps, together.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimitLayer {
    /// `qps` requests per second on average, `burst` at once; a `qps` of 0 or less turns the
    /// limit off.
    pub fn new(qps: f64, burst: u32) -> Option<Self> {
        (qps > 0.0).then(|| {
            let burst = f64::from(burst.max(1));
            let bucket = Bucket { tokens: burst, last: Instant::now(), qps, burst };
            Self { bucket: Arc::new(Mutex::new(bucket)) }
        })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited { inner, bucket: self.bucket.clone(), reserved: false, sleep: None }
    }
}

/// A service whose requests wait for a token. A token is reserved when the caller asks whether
/// the service is ready, which it is once the token's wait is over; kube's client calls the
/// service from one buffer worker, so waiting requests queue in order.
#[derive(Debug)]
pub struct RateLimited<S> {
    inner: S,
    bucket: Arc<Mutex<Bucket>>,
    /// Whether a token is reserved for the next call.
    reserved: bool,
    /// The wait for the reserved token.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S, R> Service<R> for RateLimited<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.reserved {
            let wait = self.bucket.lock().unwrap_or_else(PoisonError::into_inner).take(Instant::now());
            self.reserved = true;
            if !wait.is_zero() {
                self.sleep = Some(Box::pin(tokio::time::sleep(wait)));
            }
        }
        if let Some(sleep) = &mut self.sleep {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.reserved = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_and_the_rest_at_the_average_rate() {
        let start = Instant::now();
        let mut bucket = Bucket { tokens: 3.0, last: start, qps: 10.0, burst: 3.0 };
        let waits: Vec<Duration> = (0..5).map(|_| bucket.take(start)).collect();
        assert_eq!(&waits[..3], [Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(100));
        assert_eq!(waits[4], Duration::from_millis(200));
        // A second later the bucket is full again, never fuller than the burst.
        let later = start + Duration::from_secs(10);
        let waits: Vec<Duration> = (0..4).map(|_| bucket.take(later)).collect();
        assert_eq!(&waits[..3], [Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(100));
    }
}
