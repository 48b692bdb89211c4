//! Token and cost accounting per model: every call to the chat model (turns, history summaries,
//! recipe steps, a local child's turns) and to an embeddings endpoint is counted here, priced
//! with its Model's `pricing` when it has one, exported as metrics labelled by model, reported
//! in the Agent's `status.usage`, and kept on the agent's volume so the counts survive restarts
//! (written at most a second after a change, and when the runtime stops).
//!
//! The same counts, summed over all models per UTC day and month, are what the Agent's budgets
//! (`spec.limits`) are checked against before each model call ([`Ledger::admit`]).
//!
//! Cost is kept exactly, in millionths of a millionth of the currency: a price of `0.15` per
//! million tokens is 150,000 millionths per million tokens, so a token costs 150,000 of those
//! units.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_crds::agent::Limits;
use agent_crds::model::Pricing;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
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

/// Where the ledger reads the time: the system clock, or one a test moves.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// A clock reading `now`.
    pub fn new(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The time.
    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(Timestamp::now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// What all models used in one UTC day or month.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// `2026-11-29` for a day, `2026-11` for a month.
    pub key: String,
    /// Tokens, prompt plus generated.
    pub tokens: u64,
    /// Cost in units of 10^-12 of the chat model's currency.
    pub cost_units: u128,
}

/// Everything the ledger keeps on the volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
struct Book {
    models: BTreeMap<String, ModelCount>,
    #[serde(default)]
    day: Window,
    #[serde(default)]
    month: Window,
}

/// A daily or monthly budget and what its current window used.
struct Budget {
    name: &'static str,
    period: &'static str,
    limit: u128,
    used: u128,
    is_cost: bool,
}

/// A budget of `spec.limits` that is used up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the agent's budget spec.limits.{budget} ({limit}) is used up ({used} this {period}); it resets at {resets_at}"
)]
pub struct Exhausted {
    /// The field: `tokensPerDay`, `tokensPerMonth`, `costPerDay` or `costPerMonth`.
    pub budget: &'static str,
    /// Its value.
    pub limit: String,
    /// What was used.
    pub used: String,
    /// `day` or `month`.
    pub period: &'static str,
    /// When the window resets.
    pub resets_at: Timestamp,
}

impl Exhausted {
    /// The condition reason: the budget's name in CamelCase (`TokensPerDay`, `CostPerMonth`).
    pub fn reason(&self) -> &'static str {
        match self.budget {
            "tokensPerDay" => "TokensPerDay",
            "tokensPerMonth" => "TokensPerMonth",
            "costPerDay" => "CostPerDay",
            _ => "CostPerMonth",
        }
    }

    /// Whole seconds from `now` until the reset (at least 1).
    pub fn retry_after(&self, now: Timestamp) -> u64 {
        u64::try_from(self.resets_at.as_second() - now.as_second()).unwrap_or(0).max(1)
    }
}

/// The counts, per model, since the agent's volume was made.
pub struct Ledger {
    book: Mutex<Book>,
    prices: BTreeMap<String, Price>,
    metrics: Arc<Metrics>,
    dirty: AtomicBool,
    limits: Option<Limits>,
    clock: Clock,
}

impl Ledger {
    /// An empty ledger pricing calls to the models in `prices`.
    pub fn new(prices: BTreeMap<String, Price>, metrics: Arc<Metrics>) -> Self {
        Self {
            book: Mutex::default(),
            prices,
            metrics,
            dirty: AtomicBool::new(false),
            limits: None,
            clock: Clock::default(),
        }
    }

    /// The same ledger enforcing `limits`, with days and months read from `clock`.
    #[must_use]
    pub fn with_limits(mut self, limits: Option<Limits>, clock: Clock) -> Self {
        self.limits = limits;
        self.clock = clock;
        self
    }

    /// The current time, as the ledger reads it.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether the Agent has a daily or monthly budget.
    pub fn has_budgets(&self) -> bool {
        self.limits.as_ref().is_some_and(|l| {
            l.tokens_per_day.is_some()
                || l.tokens_per_month.is_some()
                || l.cost_per_day.is_some()
                || l.cost_per_month.is_some()
        })
    }

    /// `Ok` when no daily or monthly budget is used up, else the first that is.
    pub fn admit(&self) -> Result<(), Exhausted> {
        self.exhausted().map_or(Ok(()), Err)
    }

    /// The first daily or monthly budget that is used up, if any; also sets each budget's
    /// share in the metrics.
    pub fn exhausted(&self) -> Option<Exhausted> {
        let now = self.now();
        let budgets = self.budgets(now);
        for budget in &budgets {
            #[allow(clippy::cast_precision_loss, reason = "a ratio for a metric")]
            self.metrics.budget_used(budget.name, budget.used as f64 / budget.limit.max(1) as f64);
        }
        budgets.into_iter().find(|b| b.used >= b.limit).map(|b| Exhausted {
            budget: b.name,
            limit: if b.is_cost { decimal(b.limit) } else { b.limit.to_string() },
            used: if b.is_cost { decimal(b.used) } else { format!("{} tokens", b.used) },
            period: b.period,
            resets_at: if b.period == "day" { next_day(now) } else { next_month(now) },
        })
    }

    /// The Agent's daily and monthly budgets, with what their current windows used at `now`.
    fn budgets(&self, now: Timestamp) -> Vec<Budget> {
        let Some(limits) = self.limits.as_ref() else { return Vec::new() };
        let (day_key, month_key) = window_keys(now);
        let book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        let current = |window: &Window, key: &str| if window.key == key { window.clone() } else { Window::default() };
        let (day, month) = (current(&book.day, &day_key), current(&book.month, &month_key));
        let cost_limit =
            |limit: &Option<String>| limit.as_deref().and_then(Pricing::micros).map(|m| u128::from(m) * 1_000_000);
        let candidates = [
            ("tokensPerDay", "day", limits.tokens_per_day.map(u128::from), u128::from(day.tokens), false),
            ("tokensPerMonth", "month", limits.tokens_per_month.map(u128::from), u128::from(month.tokens), false),
            ("costPerDay", "day", cost_limit(&limits.cost_per_day), day.cost_units, true),
            ("costPerMonth", "month", cost_limit(&limits.cost_per_month), month.cost_units, true),
        ];
        candidates
            .into_iter()
            .filter_map(|(name, period, limit, used, is_cost)| {
                Some(Budget { name, period, limit: limit?, used, is_cost })
            })
            .collect()
    }

    /// Counts one call to `model`.
    pub fn record(&self, model: &str, input: u64, output: u64) {
        let price = self.prices.get(model);
        let cost = price.map_or(0, |p| u128::from(input) * p.input + u128::from(output) * p.output);
        let (day_key, month_key) = window_keys(self.now());
        {
            let mut guard = self.book.lock().unwrap_or_else(PoisonError::into_inner);
            let book = &mut *guard;
            let count = book.models.entry(model.to_owned()).or_default();
            count.input += input;
            count.output += output;
            count.calls += 1;
            count.cost_units += cost;
            count.currency = price.map(|p| p.currency.clone());
            for (window, key) in [(&mut book.day, day_key), (&mut book.month, month_key)] {
                if window.key != key {
                    *window = Window { key, ..Window::default() };
                }
                window.tokens += input + output;
                window.cost_units += cost;
            }
        }
        self.dirty.store(true, Ordering::Release);
        self.metrics.model_tokens(model, input, output);
        if self.has_budgets() {
            self.exhausted();
        }
        if let Some(price) = price {
            #[allow(clippy::cast_precision_loss, reason = "a metric: f64 precision is plenty")]
            self.metrics.model_cost(model, &price.currency, cost as f64 / UNITS_PER_CURRENCY as f64);
        }
    }

    /// The counts per model.
    pub fn counts(&self) -> BTreeMap<String, ModelCount> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner).models.clone()
    }

    /// Loads the counts kept on the volume (an earlier version's totals count as `model`'s).
    pub async fn load(&self, sessions: &SessionStore, model: &str) -> Result<(), StoreError> {
        let kept: Option<Book> = sessions.record(RUNNER, LEDGER_KEY).await?;
        let kept = if let Some(kept) = kept {
            kept
        } else {
            Book { models: self.older_totals(sessions, model).await?, ..Book::default() }
        };
        let mut guard = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        let book = &mut *guard;
        for (window, before) in [(&mut book.day, kept.day), (&mut book.month, kept.month)] {
            if window.key.is_empty() || window.key == before.key {
                window.key = before.key;
                window.tokens += before.tokens;
                window.cost_units += before.cost_units;
            }
        }
        let counts = &mut book.models;
        for (name, before) in kept.models {
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
        let book = self.book.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Err(error) = sessions.put_record(RUNNER, LEDGER_KEY, &book).await {
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

/// The keys of the UTC day and month of `now`.
fn window_keys(now: Timestamp) -> (String, String) {
    let date = now.to_zoned(TimeZone::UTC).date();
    (date.strftime("%Y-%m-%d").to_string(), date.strftime("%Y-%m").to_string())
}

/// The start of the UTC day after `now`'s.
fn next_day(now: Timestamp) -> Timestamp {
    start_of(now.to_zoned(TimeZone::UTC).date().tomorrow().ok())
}

/// The start of the UTC month after `now`'s.
fn next_month(now: Timestamp) -> Timestamp {
    start_of(now.to_zoned(TimeZone::UTC).date().first_of_month().checked_add(1.month()).ok())
}

fn start_of(date: Option<Date>) -> Timestamp {
    date.and_then(|d| d.to_zoned(TimeZone::UTC).ok()).map_or(Timestamp::MAX, |z| z.timestamp())
}

/// An amount of cost units as a decimal string of the currency with 6 places (`"0.001500"`).
pub fn decimal(units: u128) -> String {
    let micros = units / 1_000_000;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[cfg(test)]
mod tests;
