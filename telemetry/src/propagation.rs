//! W3C trace context (`traceparent`, `tracestate`) in and out of HTTP requests. Both sides are
//! no-ops when traces are off: no propagator is installed and spans carry no context.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::{Context, global};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderWriter<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// The caller's trace context from `traceparent`/`tracestate` (empty when absent or invalid).
pub fn remote_parent(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderReader(headers)))
}

/// Makes `span` a child of the caller whose trace context `headers` carry. Call it before the
/// span is first entered (entering starts it); a span that has started keeps its parent.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = remote_parent(headers);
    if opentelemetry::trace::TraceContextExt::has_active_span(&parent) {
        let _ = span.set_parent(parent);
    }
}

/// Writes the current span's trace context into outgoing `headers` (nothing when traces are
/// off or the span is not sampled in).
pub fn inject_current(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut HeaderWriter(headers)));
}

/// The current span's trace context as key/value pairs (`traceparent`, `tracestate`), for
/// carriers that are not HTTP headers, such as an MCP request's `_meta` (SEP-414). Empty when
/// traces are off.
pub fn current_fields() -> std::collections::HashMap<String, String> {
    let context = tracing::Span::current().context();
    let mut fields = std::collections::HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn a_span_continues_the_callers_trace_and_passes_it_on() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        global::set_text_map_propagator(TraceContextPropagator::new());
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let mut outgoing = http::HeaderMap::new();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handle");
            continue_trace(&span, &incoming);
            span.in_scope(|| inject_current(&mut outgoing));
        });
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(format!("{:032x}", spans[0].span_context.trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(format!("{:016x}", spans[0].parent_span_id), "00f067aa0ba902b7");
        let sent = outgoing["traceparent"].to_str().unwrap();
        assert_eq!(sent, format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{:016x}-01", spans[0].span_context.span_id()));
    }

    #[test]
    fn without_traces_nothing_is_injected() {
        let mut outgoing = http::HeaderMap::new();
        tracing::info_span!("no subscriber").in_scope(|| inject_current(&mut outgoing));
        assert!(outgoing.is_empty());
    }
}
