//! Waiting for the CRDs: the chart installs them; the operator never does. Until they exist it
//! reports why on `/readyz` and polls, instead of exiting.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};

/// Names of the CRDs the operator needs.
pub fn required_crds() -> Vec<String> {
    agent_crds::crd::all().into_iter().filter_map(|crd| crd.metadata.name).collect()
}

/// The first required CRD that is missing, if any.
pub async fn missing_crd(client: &Client) -> Result<Option<String>, kube::Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in required_crds() {
        if api.get_opt(&name).await?.is_none() {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Polls until every CRD exists; calls `report` with the reason while waiting.
pub async fn wait_for_crds(client: &Client, interval: Duration, report: impl Fn(String)) {
    loop {
        match missing_crd(client).await {
            Ok(None) => return,
            Ok(Some(name)) => {
                report(format!("CRD {name} is not installed; install the chart's CRDs (kubectl apply -k crds/yaml)"));
            }
            Err(error) => report(format!("cannot check CRDs: {error}")),
        }
        tokio::time::sleep(interval).await;
    }
}
