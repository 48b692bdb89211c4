//! Logs (`RUST_LOG` filters, text or JSON lines) and, when the standard `OTEL_*` variables name
//! an OTLP endpoint, a trace per reconcile (`agent-telemetry`).

use std::fmt::Display;

use agent_crds::runtime_config::{CAPTURE_CONTENT_VARIABLE, TracesConfig};
use agent_telemetry::{LogFormat as Lines, Setup, Telemetry, TelemetryError};
use kube::{Resource, ResourceExt as _};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::config::LogFormat;

/// Installs the global subscriber; call inside the Tokio runtime.
pub fn init(format: LogFormat) -> Result<Telemetry, TelemetryError> {
    agent_telemetry::init(&Setup {
        service_name: "agent-operator",
        exported_targets: &["agent_operator"],
        trace_only_targets: &[module_path!()],
        log_format: match format {
            LogFormat::Json => Lines::Json,
            LogFormat::Text => Lines::Text,
        },
    })
}

/// Where agent pods export traces: the operator's own OTLP settings from `var` (its
/// environment), when it exports at all; prompts and answers only with
/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
pub fn agent_traces(var: impl Fn(&str) -> Option<String>) -> Option<TracesConfig> {
    if agent_telemetry::Exporting::from_vars(&var) == agent_telemetry::Exporting::Off {
        return None;
    }
    let value = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    Some(TracesConfig {
        endpoint: value("OTEL_EXPORTER_OTLP_ENDPOINT"),
        traces_endpoint: value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        protocol: value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| value("OTEL_EXPORTER_OTLP_PROTOCOL")),
        sampler: value("OTEL_TRACES_SAMPLER"),
        sampler_arg: value("OTEL_TRACES_SAMPLER_ARG"),
        capture_content: value(CAPTURE_CONTENT_VARIABLE).is_some_and(|v| v.eq_ignore_ascii_case("true")),
    })
}

/// The span of one reconcile of `object`, a root span: its trace is the reconcile.
pub fn reconcile_span<K: Resource<DynamicType = ()>>(object: &K) -> Span {
    let kind = K::kind(&());
    tracing::info_span!(
        "reconcile",
        otel.name = %format!("reconcile {kind}"),
        otel.kind = "internal",
        k8s.resource.kind = %kind,
        k8s.namespace.name = object.namespace().as_deref(),
        k8s.object.name = %object.name_any(),
        k8s.object.generation = object.meta().generation,
        error.type = Empty,
    )
}

/// Marks the reconcile's span failed, with the error's category as `error.type`.
pub fn record_failure(span: &Span, category: &'static str, error: &impl Display) {
    span.record("error.type", category);
    span.set_status(opentelemetry::trace::Status::error(error.to_string()));
}
