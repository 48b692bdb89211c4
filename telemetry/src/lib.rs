//! Logs and traces of the operator and the agent runtime.
//!
//! [`init`] installs the process's subscriber: log lines filtered by `RUST_LOG` and, when the
//! standard OpenTelemetry variables ask for it ([`Exporting::from_env`]), an OpenTelemetry layer
//! exporting the process's own spans over OTLP (HTTP or gRPC). Without an endpoint there is no
//! layer at all, so tracing off costs nothing. [`propagation`] carries the W3C trace context in
//! and out of HTTP requests.

pub mod exporter;
pub mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry, fmt};

pub use self::exporter::{Exporting, Transport};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What a process tells [`init`] about itself.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    /// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
    pub service_name: &'a str,
    /// Targets (module paths) whose spans are exported: the process's own. Spans of the HTTP
    /// and gRPC clients are never exported, or the exporter would trace its own exports.
    pub exported_targets: &'a [&'a str],
    /// Targets whose spans are for traces only: log lines do not carry them as context.
    pub trace_only_targets: &'a [&'a str],
    /// How log lines are written.
    pub log_format: LogFormat,
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Traces were asked for, but the exporter could not be built.
    #[error("OpenTelemetry traces are configured (OTEL_EXPORTER_OTLP_*) but the exporter cannot start: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A subscriber was installed already.
    #[error("a tracing subscriber is installed already: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes the spans not yet exported.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is left and stops the exporter, off the async threads (the SDK blocks
    /// while it flushes, and the export itself runs on this runtime).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(error)) = flushed {
                eprintln!("OpenTelemetry: the last spans were not exported: {error}");
            }
        }
    }
}

/// Installs the global subscriber: log lines filtered by `RUST_LOG` (default `info`) and, when
/// [`Exporting::from_env`] finds an endpoint, the OpenTelemetry layer for `setup`'s targets.
/// Call it inside the Tokio runtime (exports run on it).
pub fn init(setup: &Setup<'_>) -> Result<Telemetry, TelemetryError> {
    let provider = match Exporting::from_env() {
        Exporting::Off => None,
        Exporting::Otlp(transport) => Some(exporter::provider(transport, setup.service_name)?),
    };
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    }
    let otel = provider.as_ref().map(|provider| otel_layer(provider, setup.service_name, setup.exported_targets));
    // A filter of the log lines only: as a global filter, RUST_LOG=warn would also drop the
    // info spans the traces are made of.
    let directives = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| "info".to_owned());
    let hidden = setup.trace_only_targets.iter().map(|target| format!(",{target}=off"));
    let filter = EnvFilter::builder().parse_lossy(hidden.fold(directives, |all, directive| all + &directive));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match setup.log_format {
        LogFormat::Text => fmt::layer().with_filter(filter).boxed(),
        LogFormat::Json => fmt::layer().json().with_filter(filter).boxed(),
    };
    tracing_subscriber::registry().with(logs).with(otel).try_init()?;
    Ok(Telemetry { provider })
}

/// The OpenTelemetry layer over `provider` (its tracer named `scope`), for `targets`' spans at
/// INFO and above, without the per-span extras (thread, source location, busy/idle times) the
/// traces do not need.
pub fn otel_layer<S>(provider: &SdkTracerProvider, scope: &str, targets: &[&str]) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let exported = targets.iter().fold(Targets::new(), |t, target| t.with_target(*target, tracing::Level::INFO));
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(scope.to_owned()))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_target(false)
        .with_level(false)
        .with_filter(exported)
}
