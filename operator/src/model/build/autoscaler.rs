//! The autoscaler of a served Model with `serve.autoscaling`: an `autoscaling/v2`
//! HorizontalPodAutoscaler on a Pods metric of the custom metrics API, or a KEDA ScaledObject
//! with a Prometheus trigger. Either targets the engine Deployment (named after the Model) and is
//! named after the Model too.
//!
//! A Model that scales to zero (`minReplicas: 0`) gets an autoscaler with a minimum of 1: the
//! operator owns the step between 0 and 1 (see `model::scale_to_zero`). While the Model sleeps
//! its ScaledObject is paused at 0 replicas, else KEDA would bring back its minimum; an HPA does
//! nothing while its target is at 0.

use std::collections::BTreeMap;

use agent_crds::model::{Model, ModelAutoscaling};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec,
    MetricTarget, PodsMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use super::labels::child_meta;
use crate::model::autoscaling::{
    Aggregate, Backend, KEDA_POLLING_SECONDS, canonical_quantity, decimal, promql, signal,
};
use crate::model::keda::{ScaleTarget, ScaleTrigger, ScaledObject, ScaledObjectSpec};
use crate::model::scale_to_zero::KEDA_PAUSED_REPLICAS;

/// The autoscaler of a Model.
#[derive(Clone, Debug, PartialEq)]
pub enum Autoscaler {
    /// A HorizontalPodAutoscaler.
    Hpa(Box<HorizontalPodAutoscaler>),
    /// A KEDA ScaledObject.
    Keda(Box<ScaledObject>),
}

impl Autoscaler {
    /// `Kind/name`, as `status.autoscaler` shows it.
    pub fn reference(&self) -> String {
        match self {
            Self::Hpa(hpa) => format!("HorizontalPodAutoscaler/{}", hpa.name_any()),
            Self::Keda(scaled) => format!("ScaledObject/{}", scaled.name_any()),
        }
    }

    /// The object as JSON (for snapshots and validation).
    pub fn to_value(&self) -> serde_json::Value {
        let value = match self {
            Self::Hpa(hpa) => serde_json::to_value(hpa.as_ref()),
            Self::Keda(scaled) => serde_json::to_value(scaled.as_ref()),
        };
        agent_crds::crd::canonical(value.unwrap_or_default())
    }
}

/// The autoscaler for `model`, or `None` without `serve.autoscaling` (or for an engine that
/// does not export the signal, which validation refuses first); `asleep` when a scale-to-zero
/// Model is (or goes) to zero replicas.
pub fn build_autoscaler(model: &Model, keda_installed: bool, asleep: bool) -> Option<Autoscaler> {
    let serve = model.spec.serve.as_ref()?;
    let autoscaling = serve.autoscaling.as_ref()?;
    let signal = signal(serve.engine, autoscaling.metric)?;
    Some(match Backend::choose(autoscaling, keda_installed) {
        Backend::Hpa => Autoscaler::Hpa(Box::new(build_hpa(model, autoscaling, signal.custom_metric))),
        Backend::Keda(address) => {
            let namespace = model.namespace().unwrap_or_default();
            let query = promql(&signal, &namespace, &model.name_any());
            let metric_type = match signal.aggregate {
                Aggregate::PerReplica => "AverageValue",
                Aggregate::Mean => "Value",
            };
            let mut scaled = build_scaled_object(model, autoscaling, address, &query, metric_type);
            if asleep {
                scaled
                    .metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(KEDA_PAUSED_REPLICAS.to_owned(), "0".to_owned());
            }
            Autoscaler::Keda(Box::new(scaled))
        }
    })
}

fn deployment_ref(model: &Model) -> CrossVersionObjectReference {
    CrossVersionObjectReference {
        api_version: Some("apps/v1".to_owned()),
        kind: "Deployment".to_owned(),
        name: model.name_any(),
    }
}

/// An HPA keeping the Pods metric `metric` at `target` per replica on average, with at least
/// one replica (below that the operator decides).
pub fn build_hpa(model: &Model, autoscaling: &ModelAutoscaling, metric: &str) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: child_meta(model, model.name_any()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: deployment_ref(model),
            min_replicas: Some(autoscaling.min_replicas.max(1)),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Pods".to_owned(),
                pods: Some(PodsMetricSource {
                    metric: MetricIdentifier { name: metric.to_owned(), selector: None },
                    target: MetricTarget {
                        type_: "AverageValue".to_owned(),
                        average_value: Some(Quantity(
                            canonical_quantity(&autoscaling.target).unwrap_or_else(|| autoscaling.target.clone()),
                        )),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        }),
        status: None,
    }
}

/// A ScaledObject with one Prometheus trigger running `query` against `address`.
pub fn build_scaled_object(
    model: &Model,
    autoscaling: &ModelAutoscaling,
    address: &str,
    query: &str,
    metric_type: &str,
) -> ScaledObject {
    let threshold = decimal(&autoscaling.target).unwrap_or_else(|| autoscaling.target.clone());
    let mut scaled = ScaledObject::new(
        &model.name_any(),
        ScaledObjectSpec {
            scale_target_ref: ScaleTarget {
                api_version: Some("apps/v1".to_owned()),
                kind: Some("Deployment".to_owned()),
                name: model.name_any(),
            },
            polling_interval: Some(KEDA_POLLING_SECONDS),
            min_replica_count: Some(autoscaling.min_replicas.max(1)),
            max_replica_count: Some(autoscaling.max_replicas),
            triggers: vec![ScaleTrigger {
                type_: "prometheus".to_owned(),
                name: Some(autoscaling.metric.as_str().to_ascii_lowercase()),
                metric_type: Some(metric_type.to_owned()),
                metadata: BTreeMap::from([
                    ("serverAddress".to_owned(), address.to_owned()),
                    ("query".to_owned(), query.to_owned()),
                    ("threshold".to_owned(), threshold),
                ]),
            }],
        },
    );
    scaled.metadata = child_meta(model, model.name_any());
    scaled
}
