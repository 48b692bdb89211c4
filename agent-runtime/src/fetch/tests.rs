use std::net::SocketAddr;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

use super::*;

/// A web server on loopback: `/doc` answers text, `/big` 100 kB, `/hop` redirects to `target`.
async fn server(target: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/doc", get(|| async { "hello" }))
        .route("/big", get(|| async { "x".repeat(100_000) }))
        .route("/hop", get(move || async move { Redirect::temporary(&target) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn fetcher(policy: FetchPolicy) -> Fetcher {
    Fetcher::new(policy, Duration::from_secs(5)).unwrap()
}

#[test]
fn internal_addresses_are_recognised() {
    for internal in [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ] {
        assert!(is_internal(internal.parse().unwrap()), "{internal}");
    }
    for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
        assert!(!is_internal(public.parse().unwrap()), "{public}");
    }
}

#[tokio::test]
async fn loopback_is_refused_by_address_and_by_name_unless_an_allowed_prefix_names_it() {
    let addr = server(String::new()).await;
    let open = fetcher(FetchPolicy::default());
    let by_address = open.get(&format!("http://{addr}/doc"), 1024).await.unwrap_err();
    assert!(matches!(by_address, FetchError::Refused(ref why) if why.contains("internal address")), "{by_address}");
    let by_name = open.get(&format!("http://localhost:{}/doc", addr.port()), 1024).await.unwrap_err();
    assert!(matches!(by_name, FetchError::Refused(ref why) if why.contains("internal address")), "{by_name}");
    let allowed = fetcher(FetchPolicy::public_and(vec![format!("http://localhost:{}/", addr.port())]));
    let fetched = allowed.get(&format!("http://localhost:{}/doc", addr.port()), 1024).await.unwrap();
    assert_eq!((fetched.status, fetched.bytes.as_slice()), (200, b"hello".as_slice()));
}

#[tokio::test]
async fn a_redirect_to_an_address_that_is_not_allowed_is_refused() {
    let inner = server(String::new()).await;
    let outer = server(format!("http://{inner}/doc")).await;
    let fetcher = fetcher(FetchPolicy::public_and(vec![format!("http://{outer}/")]));
    let error = fetcher.get(&format!("http://{outer}/hop"), 1024).await.unwrap_err();
    assert!(matches!(error, FetchError::Refused(ref why) if why.contains("internal address")), "{error}");
}

#[tokio::test]
async fn only_listed_prefixes_and_http_schemes_are_fetched_when_the_policy_says_so() {
    let listed = fetcher(FetchPolicy::only(vec!["https://docs.example.com/".into()]));
    let error = listed.get("https://evil.example.com/", 1024).await.unwrap_err();
    assert!(matches!(error, FetchError::Refused(ref why) if why.contains("not under an allowed prefix")), "{error}");
    let error = listed.get("file:///etc/passwd", 1024).await.unwrap_err();
    assert!(matches!(error, FetchError::Refused(_)), "{error}");
    let error = listed.get("not a url", 1024).await.unwrap_err();
    assert!(matches!(error, FetchError::InvalidUrl { .. }), "{error}");
}

#[tokio::test]
async fn bodies_are_cut_at_the_limit_and_a_whole_document_over_it_is_refused() {
    let addr = server(String::new()).await;
    let fetcher = fetcher(FetchPolicy::public_and(vec![format!("http://{addr}/")]));
    let cut = fetcher.get(&format!("http://{addr}/big"), 1000).await.unwrap();
    assert!(cut.truncated && cut.bytes.len() == 1000);
    let error = fetcher.document(&format!("http://{addr}/big"), 1000).await.unwrap_err();
    assert!(matches!(error, FetchError::TooLarge { limit: 1000, .. }), "{error}");
    let error = fetcher.document(&format!("http://{addr}/missing"), 1000).await.unwrap_err();
    assert!(matches!(error, FetchError::Status { status: 404, .. }), "{error}");
}
