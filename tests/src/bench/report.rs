//! One table (or JSON) of figures.

use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Scenario.
    pub scenario: String,
    /// What was measured.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// Ratio to the yardstick named in `versus`, if any.
    pub ratio: Option<f64>,
    /// The yardstick.
    pub versus: Option<String>,
}

/// Every figure of a run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Figures, in order.
    pub figures: Vec<Figure>,
}

impl Report {
    /// Adds a figure.
    pub fn add(&mut self, scenario: &str, metric: &str, value: f64, unit: &str) {
        self.figures.push(Figure {
            scenario: scenario.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            ratio: None,
            versus: None,
        });
    }

    /// Adds a figure with its ratio to a yardstick (skipped when the
    /// yardstick was not measured).
    pub fn add_vs(
        &mut self,
        scenario: &str,
        metric: &str,
        value: f64,
        unit: &str,
        versus: Option<(&str, f64)>,
    ) {
        self.add(scenario, metric, value, unit);
        if let (Some(last), Some((name, base))) = (self.figures.last_mut(), versus)
            && base > 0.0
        {
            last.ratio = Some(value / base);
            last.versus = Some(name.into());
        }
    }

    /// Adds a figure once per yardstick it is compared with (one row each,
    /// same value), or once without a ratio when none was measured.
    pub fn add_vs_each(
        &mut self,
        scenario: &str,
        metric: &str,
        value: f64,
        unit: &str,
        versus: &[Option<(&str, f64)>],
    ) {
        let measured: Vec<(&str, f64)> = versus
            .iter()
            .flatten()
            .copied()
            .filter(|(_, base)| *base > 0.0)
            .collect();
        if measured.is_empty() {
            self.add(scenario, metric, value, unit);
        }
        for yardstick in measured {
            self.add_vs(scenario, metric, value, unit, Some(yardstick));
        }
    }

    /// The table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<10} {:<44} {:>14} {:<10} {:>8}  {}\n",
            "scenario", "metric", "value", "unit", "ratio", "versus"
        );
        for f in &self.figures {
            let ratio = f.ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
            out.push_str(&format!(
                "{:<10} {:<44} {:>14.2} {:<10} {:>8}  {}\n",
                f.scenario,
                f.metric,
                f.value,
                f.unit,
                ratio,
                f.versus.as_deref().unwrap_or("")
            ));
        }
        out
    }
}
