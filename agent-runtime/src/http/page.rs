//! The web chat page at `/`: one HTML file and, under `/web/`, its script modules and style,
//! compiled into the binary from `agent-runtime/web/` (no CDN, no build step, works offline).
//! Served without the API key: the page asks for the key and sends it to the API as a bearer
//! token. Scripts and style are files rather than inline so the policy can forbid inline code.

use axum::Router;
use axum::extract::Path;
use axum::http::HeaderName;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiError;

const INDEX: &str = include_str!("../../web/index.html");

const SCRIPT: &str = "text/javascript; charset=utf-8";
const STYLE: &str = "text/css; charset=utf-8";

/// The files under `/web/`: name, content, type. `app.js` imports the other modules.
const ASSETS: [(&str, &str, &str); 9] = [
    ("app.js", include_str!("../../web/app.js"), SCRIPT),
    ("agent.js", include_str!("../../web/agent.js"), SCRIPT),
    ("answers.js", include_str!("../../web/answers.js"), SCRIPT),
    ("api.js", include_str!("../../web/api.js"), SCRIPT),
    ("chat.js", include_str!("../../web/chat.js"), SCRIPT),
    ("knowledge.js", include_str!("../../web/knowledge.js"), SCRIPT),
    ("store.js", include_str!("../../web/store.js"), SCRIPT),
    ("ui.js", include_str!("../../web/ui.js"), SCRIPT),
    ("app.css", include_str!("../../web/app.css"), STYLE),
];

/// The page's Content-Security-Policy: its own scripts, style and API only (nothing inline, no
/// other origin), the empty `data:` favicon as the one image from elsewhere, and no framing.
pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                          connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                          frame-ancestors 'none'";

/// The page's routes, for the router to merge outside the API-key layer.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/web/{file}", get(asset))
}

/// `GET /`: the page.
pub async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

/// `GET /web/{file}`: one of the page's scripts or its style.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, body, content_type)) => file(body, content_type),
        None => ApiError::NotFound(format!("the page has no file {name}")).into_response(),
    }
}

/// A file of the page with its type and policy. `no-cache` makes browsers revalidate, so a new
/// binary's page is never mixed with an old script.
fn file(body: &'static str, content_type: &'static str) -> Response {
    let headers: [(HeaderName, &'static str); 5] = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, "no-cache"),
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ];
    (headers, body).into_response()
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

    /// Every `from './x.js'` of a script.
    fn imports(script: &str) -> Vec<&str> {
        script.split("from './").skip(1).filter_map(|rest| rest.split_once('\'').map(|(name, _)| name)).collect()
    }

    #[tokio::test]
    async fn the_page_its_scripts_and_its_style_are_served_with_their_types_and_a_strict_policy() {
        let mut files = vec![("/".to_owned(), "text/html; charset=utf-8", INDEX)];
        files.extend(ASSETS.iter().map(|(name, body, content_type)| (format!("/web/{name}"), *content_type, *body)));
        for (path, content_type, content) in files {
            let (status, headers, body) = get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[CONTENT_TYPE], content_type, "{path}");
            assert_eq!(headers[CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(headers[CONTENT_SECURITY_POLICY], POLICY, "{path}");
            assert_eq!(body, content, "{path} is the embedded file");
        }
        let (status, _, body) = get("/web/missing.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("no file missing.js"), "{body}");
    }

    #[test]
    fn the_page_loads_its_entry_module_and_style_and_every_import_is_served() {
        assert!(INDEX.contains("<script type=\"module\" src=\"web/app.js\"></script>"));
        assert!(INDEX.contains("<link rel=\"stylesheet\" href=\"web/app.css\">"));
        for (name, body, _) in ASSETS {
            for import in imports(body) {
                assert!(ASSETS.iter().any(|(asset, _, _)| *asset == import), "{name} imports {import}, not served");
            }
        }
        let (_, app, _) = ASSETS[0];
        assert_eq!(imports(app).len(), 5, "app.js starts the page's parts");
    }

    #[test]
    fn page_requests_are_counted_under_their_own_route_label() {
        assert_eq!(crate::http::route_label(Some("/")), "page");
        assert_eq!(crate::http::route_label(Some("/web/{file}")), "page");
    }

    #[test]
    fn the_policy_allows_nothing_inline_and_no_other_origin() {
        assert!(POLICY.starts_with("default-src 'self';"));
        assert!(!POLICY.contains("unsafe-inline") && !POLICY.contains("unsafe-eval") && !POLICY.contains('*'));
        assert!(POLICY.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() {
        let inline_script =
            INDEX.match_indices("<script").any(|(at, _)| !INDEX[at..].starts_with("<script type=\"module\" src="));
        assert!(!inline_script, "every script is a file");
        assert!(!INDEX.contains("<style") && !INDEX.contains(" style="), "no inline style");
        for page in std::iter::once(INDEX).chain(ASSETS.iter().map(|(_, body, _)| *body)) {
            assert!(!page.contains("http://") && !page.contains("https://"), "no absolute URL");
        }
    }

    #[test]
    fn the_scripts_never_write_html() {
        for (name, body, content_type) in ASSETS {
            if content_type != SCRIPT {
                continue;
            }
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                assert!(!body.contains(sink), "{name} uses {sink}");
            }
        }
    }
}
