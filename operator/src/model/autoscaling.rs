//! Autoscaling signals: for each engine and `serve.autoscaling.metric`, the Pods metric an HPA
//! reads from the custom metrics API and the PromQL a KEDA ScaledObject runs, and which of the
//! two autoscalers a Model gets. Pure.

use agent_crds::model::{AutoscalingMetric, Engine, ModelAutoscaling};

/// Name of the CRD whose presence means KEDA is installed.
pub const KEDA_CRD: &str = "scaledobjects.keda.sh";

/// How often KEDA queries Prometheus, in seconds.
pub const KEDA_POLLING_SECONDS: i32 = 15;

/// Window of the rates behind time to first token (PromQL range).
pub const RATE_WINDOW: &str = "2m";

/// Which autoscaler a Model gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend<'a> {
    /// An `autoscaling/v2` HorizontalPodAutoscaler on a Pods metric of the custom metrics API.
    Hpa,
    /// A KEDA ScaledObject with a Prometheus trigger querying this address.
    Keda(&'a str),
}

impl<'a> Backend<'a> {
    /// KEDA where it is installed and the Model names the Prometheus it should query; else an HPA
    /// (which needs a custom metrics adapter, such as prometheus-adapter, serving the metric).
    pub fn choose(autoscaling: &'a ModelAutoscaling, keda_installed: bool) -> Self {
        match (&autoscaling.prometheus_address, keda_installed) {
            (Some(address), true) => Self::Keda(address),
            _ => Self::Hpa,
        }
    }
}

/// How a target compares with the signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    /// The signal is a count summed over the pods; the target is per replica (HPA `AverageValue`).
    PerReplica,
    /// The signal is already a mean over the pods (latency, utilisation); the target is that mean
    /// (KEDA `Value`).
    Mean,
}

/// One engine's signal for one metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    /// Name of the Pods metric in the custom metrics API (what the adapter rule in the README
    /// exposes).
    pub custom_metric: &'static str,
    /// The Prometheus series it comes from.
    pub series: &'static str,
    /// How the target compares with it.
    pub aggregate: Aggregate,
}

/// The signal of `metric` for `engine`; `None` where the engine does not export it (the CRD's
/// rules and `validate` refuse those combinations).
pub fn signal(engine: Engine, metric: AutoscalingMetric) -> Option<Signal> {
    let (custom_metric, series, aggregate) = match (engine, metric) {
        (Engine::Vllm, AutoscalingMetric::QueueDepth) => {
            ("vllm_num_requests_waiting", "vllm:num_requests_waiting", Aggregate::PerReplica)
        }
        (Engine::Vllm, AutoscalingMetric::RunningRequests) => {
            ("vllm_num_requests_running", "vllm:num_requests_running", Aggregate::PerReplica)
        }
        (Engine::Llamacpp, AutoscalingMetric::QueueDepth) => {
            ("llamacpp_requests_deferred", "llamacpp:requests_deferred", Aggregate::PerReplica)
        }
        (Engine::Llamacpp, AutoscalingMetric::RunningRequests) => {
            ("llamacpp_requests_processing", "llamacpp:requests_processing", Aggregate::PerReplica)
        }
        (Engine::Vllm, AutoscalingMetric::TimeToFirstToken) => {
            ("vllm_time_to_first_token_seconds", "vllm:time_to_first_token_seconds", Aggregate::Mean)
        }
        (_, AutoscalingMetric::GpuUtilization) => ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_UTIL", Aggregate::Mean),
        _ => return None,
    };
    Some(Signal { custom_metric, series, aggregate })
}

/// Why `metric` cannot scale `engine`, as a sentence; `None` when it can.
pub fn unsupported(engine: Engine, metric: AutoscalingMetric, accelerated: bool) -> Option<String> {
    if metric == AutoscalingMetric::GpuUtilization && !accelerated {
        return Some("serve.autoscaling.metric GpuUtilization needs serve.accelerator".to_owned());
    }
    signal(engine, metric).is_none().then(|| {
        let engines = match metric {
            AutoscalingMetric::TimeToFirstToken => "vllm",
            _ => "vllm or llamacpp",
        };
        format!(
            "serve.autoscaling.metric {} needs engine {engines} (engine {engine:?} does not export it)",
            metric.as_str()
        )
    })
}

/// The PromQL KEDA runs for `signal` over the pods of Deployment `deployment` in `namespace`.
/// Counts are summed (KEDA divides by the replicas); means are averaged, and an idle engine
/// (no requests: a 0/0 rate) reads as 0 rather than no value.
pub fn promql(signal: &Signal, namespace: &str, deployment: &str) -> String {
    // Deployment pods are named `<deployment>-<replicaset hash>-<suffix>`.
    let pods = format!(r#"namespace="{namespace}",pod=~"{deployment}-[a-z0-9]+-[a-z0-9]+""#);
    let series = signal.series;
    match (signal.aggregate, series.ends_with("_seconds")) {
        (Aggregate::PerReplica, _) => format!("sum({series}{{{pods}}})"),
        (Aggregate::Mean, true) => format!(
            "(sum(rate({series}_sum{{{pods}}}[{RATE_WINDOW}])) / sum(rate({series}_count{{{pods}}}[{RATE_WINDOW}]))) >= 0 \
             or vector(0)"
        ),
        (Aggregate::Mean, false) => format!("avg({series}{{{pods}}}) or vector(0)"),
    }
}

/// A quantity (`4`, `500m`, `1.5`, `2k`) as a plain decimal number for KEDA's threshold;
/// `None` when it is not a decimal quantity.
pub fn decimal(quantity: &str) -> Option<String> {
    let text = quantity.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => return None,
    };
    let scaled = value * scale;
    (scaled.is_finite() && scaled > 0.0).then(|| {
        let text = format!("{scaled:.9}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    })
}

/// A positive decimal quantity in the API server's canonical form (`1.5` is `1500m`, `2000` is
/// `2k`), so an HPA read back compares equal to the one built and is not applied again on every
/// reconcile. Precision stops at milli-units; `None` when `decimal` refuses the quantity or it is
/// below one milli-unit.
pub fn canonical_quantity(quantity: &str) -> Option<String> {
    let value: f64 = decimal(quantity)?.parse().ok()?;
    let rounded = (value * 1000.0).round();
    if !(1.0..9.0e18).contains(&rounded) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // bounded just above
    let milli = rounded as i64;
    if milli % 1000 != 0 {
        return Some(format!("{milli}m"));
    }
    let mut units = milli / 1000;
    let mut suffixes = ["", "k", "M", "G", "T", "P", "E"].iter();
    let mut suffix = suffixes.next().copied().unwrap_or_default();
    while units % 1000 == 0 {
        let Some(next) = suffixes.next() else { break };
        units /= 1000;
        suffix = next;
    }
    Some(format!("{units}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_signal_names_its_own_series() {
        let vllm = signal(Engine::Vllm, AutoscalingMetric::QueueDepth).unwrap();
        assert_eq!(vllm.series, "vllm:num_requests_waiting");
        let llama = signal(Engine::Llamacpp, AutoscalingMetric::RunningRequests).unwrap();
        assert_eq!((llama.custom_metric, llama.aggregate), ("llamacpp_requests_processing", Aggregate::PerReplica));
        assert!(signal(Engine::Llamacpp, AutoscalingMetric::TimeToFirstToken).is_none());
        assert!(signal(Engine::Tgi, AutoscalingMetric::QueueDepth).is_none());
        assert!(unsupported(Engine::Tei, AutoscalingMetric::GpuUtilization, false).unwrap().contains("accelerator"));
        assert!(unsupported(Engine::Tgi, AutoscalingMetric::QueueDepth, true).unwrap().contains("vllm or llamacpp"));
        assert_eq!(unsupported(Engine::Tgi, AutoscalingMetric::GpuUtilization, true), None);
    }

    #[test]
    fn queries_select_the_deployments_pods_and_read_idle_latency_as_zero() {
        let queue = signal(Engine::Vllm, AutoscalingMetric::QueueDepth).unwrap();
        assert_eq!(
            promql(&queue, "models", "llama"),
            r#"sum(vllm:num_requests_waiting{namespace="models",pod=~"llama-[a-z0-9]+-[a-z0-9]+"})"#
        );
        let ttft = promql(&signal(Engine::Vllm, AutoscalingMetric::TimeToFirstToken).unwrap(), "m", "l");
        assert!(ttft.contains("rate(vllm:time_to_first_token_seconds_sum{"), "{ttft}");
        assert!(ttft.ends_with("or vector(0)"), "{ttft}");
        let gpu = promql(&signal(Engine::Tgi, AutoscalingMetric::GpuUtilization).unwrap(), "m", "l");
        assert!(gpu.starts_with("avg(DCGM_FI_DEV_GPU_UTIL{"), "{gpu}");
    }

    #[test]
    fn thresholds_are_plain_decimals() {
        assert_eq!(decimal("4").as_deref(), Some("4"));
        assert_eq!(decimal("500m").as_deref(), Some("0.5"));
        assert_eq!(decimal("1.5").as_deref(), Some("1.5"));
        assert_eq!(decimal("2k").as_deref(), Some("2000"));
        assert_eq!(decimal("0"), None);
        assert_eq!(decimal("1Gi"), None);
    }

    #[test]
    fn hpa_targets_are_written_as_the_api_server_stores_them() {
        assert_eq!(canonical_quantity("4").as_deref(), Some("4"));
        assert_eq!(canonical_quantity("1.5").as_deref(), Some("1500m"));
        assert_eq!(canonical_quantity("500m").as_deref(), Some("500m"));
        assert_eq!(canonical_quantity("2000").as_deref(), Some("2k"));
        assert_eq!(canonical_quantity("80").as_deref(), Some("80"));
        assert_eq!(canonical_quantity("1.0").as_deref(), Some("1"));
        assert_eq!(canonical_quantity("100u"), None);
    }

    #[test]
    fn keda_is_chosen_only_where_installed_and_given_a_prometheus() {
        let mut autoscaling = ModelAutoscaling {
            min_replicas: 1,
            max_replicas: 3,
            metric: AutoscalingMetric::QueueDepth,
            target: "4".into(),
            prometheus_address: None,
            scale_to_zero_after: None,
            wake_timeout: None,
        };
        assert_eq!(Backend::choose(&autoscaling, true), Backend::Hpa);
        autoscaling.prometheus_address = Some("http://prometheus:9090".into());
        assert_eq!(Backend::choose(&autoscaling, false), Backend::Hpa);
        assert_eq!(Backend::choose(&autoscaling, true), Backend::Keda("http://prometheus:9090"));
    }
}
