//! The web chat page at `/`: one HTML file, its script (`/app.js`) and its style (`/app.css`),
//! compiled into the binary from `agent-runtime/web/` (no CDN, no build step, works offline).
//! Served without the API key: the page asks for the key and sends it to the API as a bearer
//! token. Script and style are files rather than inline so the policy can forbid inline code.

use axum::Router;
use axum::http::HeaderName;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/app.js");
const STYLE: &str = include_str!("../../web/app.css");

/// The page's Content-Security-Policy: its own script, style and API only (nothing inline, no
/// other origin), the empty `data:` favicon as the one image from elsewhere, and no framing.
pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                          connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                          frame-ancestors 'none'";

/// The page's routes, for the router to merge outside the API-key layer.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/app.js", get(script)).route("/app.css", get(style))
}

/// `GET /`: the page.
pub async fn index() -> impl IntoResponse {
    asset(INDEX, "text/html; charset=utf-8")
}

/// `GET /app.js`: the page's script.
pub async fn script() -> impl IntoResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /app.css`: the page's style.
pub async fn style() -> impl IntoResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

/// A file of the page with its type and policy. `no-cache` makes browsers revalidate, so a new
/// binary's page is never mixed with an old script.
fn asset(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    let headers: [(HeaderName, &'static str); 5] = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, "no-cache"),
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ];
    (headers, body)
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = routes::<()>().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_its_script_and_its_style_are_served_with_their_types_and_a_strict_policy() {
        for (path, content_type, marker) in [
            ("/", "text/html; charset=utf-8", "<script src=\"app.js\" defer></script>"),
            ("/app.js", "text/javascript; charset=utf-8", "'use strict';"),
            ("/app.css", "text/css; charset=utf-8", ":focus-visible"),
        ] {
            let (status, headers, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[CONTENT_TYPE], content_type, "{path}");
            assert_eq!(headers[CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(headers[CONTENT_SECURITY_POLICY], POLICY, "{path}");
            assert!(body.contains(marker), "{path} is the embedded file");
        }
    }

    #[test]
    fn the_policy_allows_nothing_inline_and_no_other_origin() {
        assert!(POLICY.starts_with("default-src 'self';"));
        assert!(!POLICY.contains("unsafe-inline") && !POLICY.contains("unsafe-eval") && !POLICY.contains('*'));
        assert!(POLICY.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() {
        let inline_script = INDEX.match_indices("<script").any(|(at, _)| !INDEX[at..].starts_with("<script src="));
        assert!(!inline_script, "every script is a file");
        assert!(!INDEX.contains("<style") && !INDEX.contains(" style="), "no inline style");
        for page in [INDEX, SCRIPT, STYLE] {
            assert!(!page.contains("http://") && !page.contains("https://"), "no absolute URL");
        }
    }

    #[test]
    fn the_script_never_writes_html() {
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!SCRIPT.contains(sink), "app.js uses {sink}");
        }
    }
}
