//! The OTLP exporter, configured by the standard OpenTelemetry variables.
//!
//! Who reads what: [`Exporting::from_vars`] decides whether traces are exported at all and over
//! which transport (`OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`); the exporter reads the endpoint, headers, timeout and
//! compression; the SDK reads `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER[_ARG]` and the batch processor's `OTEL_BSP_*`.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// How OTLP reaches the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `http/protobuf`, the default.
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
    /// `grpc`.
    Grpc,
}

/// Whether traces are exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporting {
    /// No endpoint, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: no layer at all.
    Off,
    /// To the endpoint of the OTLP variables, over this transport.
    Otlp(Transport),
}

impl Exporting {
    /// From the process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From the variables `var` reads. Without an endpoint nothing is exported (the SDK would
    /// otherwise retry localhost forever); `OTEL_SDK_DISABLED` and `OTEL_TRACES_EXPORTER`, which
    /// the Rust SDK ignores, are honoured here.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
        if var("OTEL_SDK_DISABLED").as_deref() == Some("true")
            || var("OTEL_TRACES_EXPORTER").as_deref() == Some("none")
            || (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() && var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none())
        {
            return Self::Off;
        }
        match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL")).as_deref() {
            Some("grpc") => Self::Otlp(Transport::Grpc),
            Some("http/json") => Self::Otlp(Transport::HttpJson),
            _ => Self::Otlp(Transport::HttpProtobuf),
        }
    }
}

/// The tracer provider: a batch exporter over `transport`, sampled as `OTEL_TRACES_SAMPLER`
/// says (parent-based, always on, by default), named `service_name` unless the environment
/// names the service.
pub fn provider(
    transport: Transport,
    service_name: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    // rustls without a default provider: the exporter's client needs ring installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = opentelemetry_otlp::SpanExporter::builder();
    // No with_endpoint(): the exporter reads the variables (and appends /v1/traces to the
    // generic endpoint), and a programmatic endpoint would be used verbatim.
    let exporter = match transport {
        // The protocol is set, not left to the exporter: with every encoding compiled in, its
        // default would be JSON rather than the specification's protobuf.
        Transport::HttpProtobuf => {
            builder.with_http().with_protocol(Protocol::HttpBinary).with_http_client(http_client()).build()?
        }
        Transport::HttpJson => {
            builder.with_http().with_protocol(Protocol::HttpJson).with_http_client(http_client()).build()?
        }
        Transport::Grpc => builder.with_tonic().with_timeout(Duration::from_secs(10)).build()?,
    };
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|a| a.split(',').any(|kv| kv.trim_start().starts_with("service.name=")));
    let mut resource = Resource::builder();
    if !named {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let resource = resource.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build();
    // No with_sampler(): the builder's default reads OTEL_TRACES_SAMPLER and its argument.
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(OnTokio::new(exporter, tokio::runtime::Handle::current()))
        .build())
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap_or_default()
}

/// Runs every export of `E` as a task on a Tokio runtime. The SDK's batch processor exports from
/// a thread of its own with a bare executor, where the async HTTP and gRPC clients find no
/// reactor and panic (opentelemetry-rust#3125).
#[derive(Debug)]
pub struct OnTokio<E> {
    inner: Arc<E>,
    runtime: tokio::runtime::Handle,
}

impl<E> OnTokio<E> {
    /// `inner`, exporting on `runtime`.
    pub fn new(inner: E, runtime: tokio::runtime::Handle) -> Self {
        Self { inner: Arc::new(inner), runtime }
    }
}

impl<E: SpanExporter + 'static> SpanExporter for OnTokio<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let inner = Arc::clone(&self.inner);
        let task = self.runtime.spawn(async move { inner.export(batch).await });
        async move { task.await.unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(format!("export task: {e}")))) }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called once while the provider is built, before any export holds a clone.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporting(vars: &[(&str, &str)]) -> Exporting {
        Exporting::from_vars(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        assert_eq!(exporting(&[]), Exporting::Off);
        assert_eq!(exporting(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]), Exporting::Off);
        assert_eq!(exporting(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Exporting::Off);
    }

    #[test]
    fn an_endpoint_exports_over_http_unless_grpc_is_asked_for() {
        assert_eq!(
            exporting(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]),
            Exporting::Otlp(Transport::HttpProtobuf)
        );
        assert_eq!(
            exporting(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "gRPC")
            ]),
            Exporting::Otlp(Transport::Grpc)
        );
        assert_eq!(
            exporting(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ]),
            Exporting::Otlp(Transport::HttpJson)
        );
    }

    #[test]
    fn disabling_variables_win_over_an_endpoint() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(exporting(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]), Exporting::Off);
        assert_eq!(exporting(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]), Exporting::Off);
        assert_eq!(exporting(&[endpoint, ("OTEL_TRACES_EXPORTER", "otlp")]), Exporting::Otlp(Transport::HttpProtobuf));
    }
}
