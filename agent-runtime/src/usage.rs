//! Token and cost accounting per model: every call to the chat model (turns, history summaries,
//! recipe steps, a local child's turns) and to an embeddings endpoint is counted here, priced
//! with its Model's `pricing` when it has one, exported as metrics labelled by model, reported
//! in the Agent's `status.usage`, and kept on the agent's volume so the counts survive restarts
//! (written at most a second after a change, and when the runtime stops).
//!
//! Cost is kept exactly, in millionths of a millionth of the currency: a price of `0.15` per
//! million tokens is 150,000 millionths per million tokens, so a token costs 150,000 of those
//! units.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_crds::model::Pricing;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::sessions::{RUNNER, SessionStore, StoreError};

/// Key of the counts kept on the volume.
const LEDGER_KEY: &str = "usage-ledger";
/// Key of the counts an earlier version kept (totals of the chat model only).
const OLD_USAGE_KEY: &str = "usage";
/// Units of cost in one unit of currency.
const UNITS_PER_CURRENCY: u128 = 1_000_000_000_000;
/// How soon a change is written to the volume.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A model's price, per token, in cost units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    /// Cost units per prompt token.
    pub input: u128,
    /// Cost units per generated token.
    pub output: u128,
    /// ISO 4217 code.
    pub currency: String,
}

impl Price {
    /// The price a Model's `pricing` gives; `None` when a price is not a decimal (the schema
    /// admits only decimals, so only a hand-written config gets here).
    pub fn of(pricing: &Pricing) -> Option<Self> {
        Some(Self {
            input: u128::from(Pricing::micros(&pricing.input_per_million_tokens)?),
            output: u128::from(Pricing::micros(&pricing.output_per_million_tokens)?),
            currency: pricing.currency.clone(),
        })
    }
}

/// What one model used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelCount {
    /// Prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
    /// Model calls.
    pub calls: u64,
    /// Cost in units of 10^-12 of its currency; 0 for a model without a price.
    pub cost_units: u128,
    /// The currency of `cost_units`, when the model has a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// The counts, per model, since the agent's volume was made.
pub struct Ledger {
    counts: Mutex<BTreeMap<String, ModelCount>>,
    prices: BTreeMap<String, Price>,
    metrics: Arc<Metrics>,
    dirty: AtomicBool,
}

impl Ledger {
    /// An empty ledger pricing calls to the models in `prices`.
    pub fn new(prices: BTreeMap<String, Price>, metrics: Arc<Metrics>) -> Self {
        Self { counts: Mutex::default(), prices, metrics, dirty: AtomicBool::new(false) }
    }

    /// Counts one call to `model`.
    pub fn record(&self, model: &str, input: u64, output: u64) {
        let price = self.prices.get(model);
        let cost = price.map_or(0, |p| u128::from(input) * p.input + u128::from(output) * p.output);
        {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let count = counts.entry(model.to_owned()).or_default();
            count.input += input;
            count.output += output;
            count.calls += 1;
            count.cost_units += cost;
            count.currency = price.map(|p| p.currency.clone());
        }
        self.dirty.store(true, Ordering::Release);
        self.metrics.model_tokens(model, input, output);
        if let Some(price) = price {
            #[allow(clippy::cast_precision_loss, reason = "a metric: f64 precision is plenty")]
            self.metrics.model_cost(model, &price.currency, cost as f64 / UNITS_PER_CURRENCY as f64);
        }
    }

    /// The counts per model.
    pub fn counts(&self) -> BTreeMap<String, ModelCount> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Loads the counts kept on the volume (an earlier version's totals count as `model`'s).
    pub async fn load(&self, sessions: &SessionStore, model: &str) -> Result<(), StoreError> {
        let kept: Option<BTreeMap<String, ModelCount>> = sessions.record(RUNNER, LEDGER_KEY).await?;
        let kept = if let Some(kept) = kept { kept } else { self.older_totals(sessions, model).await? };
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, before) in kept {
            let count = counts.entry(name).or_default();
            count.input += before.input;
            count.output += before.output;
            count.calls += before.calls;
            count.cost_units += before.cost_units;
            count.currency = count.currency.take().or(before.currency);
        }
        Ok(())
    }

    /// The totals an earlier version kept (of the chat model only), as `model`'s counts.
    async fn older_totals(
        &self,
        sessions: &SessionStore,
        model: &str,
    ) -> Result<BTreeMap<String, ModelCount>, StoreError> {
        #[derive(Deserialize)]
        struct OlderTotals {
            input: u64,
            output: u64,
        }
        let older: Option<OlderTotals> = sessions.record(RUNNER, OLD_USAGE_KEY).await?;
        Ok(older
            .map(|o| {
                let count = ModelCount { input: o.input, output: o.output, ..ModelCount::default() };
                BTreeMap::from([(model.to_owned(), count)])
            })
            .unwrap_or_default())
    }

    /// Writes the counts to the volume if they changed since the last write.
    pub async fn flush(&self, sessions: &SessionStore) -> Result<(), StoreError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let counts = self.counts();
        if let Err(error) = sessions.put_record(RUNNER, LEDGER_KEY, &counts).await {
            self.dirty.store(true, Ordering::Release);
            return Err(error);
        }
        Ok(())
    }

    /// Loads the counts kept on the volume, then keeps them there ([`Ledger::keep_on`]).
    pub async fn resume(self: &Arc<Self>, sessions: SessionStore, model: &str) -> Result<(), StoreError> {
        self.load(&sessions, model).await?;
        self.keep_on(sessions);
        Ok(())
    }

    /// Writes the counts at most [`FLUSH_EVERY`] after they change, until the process ends.
    pub fn keep_on(self: &Arc<Self>, sessions: SessionStore) {
        let ledger = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                if let Err(error) = ledger.flush(&sessions).await {
                    tracing::warn!(%error, "keeping the token counts failed; trying again");
                }
            }
        });
    }
}

/// An amount of cost units as a decimal string of the currency with 6 places (`"0.001500"`).
pub fn decimal(units: u128) -> String {
    let micros = units / 1_000_000;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[cfg(test)]
mod tests;
