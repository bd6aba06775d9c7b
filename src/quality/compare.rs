//! A variant's quality rows against its baseline's: every measure of [`super::measures`] with
//! its 95% interval, one [`Comparison`]. Used by `quality --baseline` and by the report's
//! quantization section (so this file never reaches the client).

use std::path::Path;

use serde_json::{Value, json};

use super::measures::{
    AccuracyDiff, Block, BlockIntervals, GreedyAgreement, Position, TeacherForced, accuracy_diff, block_intervals,
    blocks, greedy_agreement, perplexity,
};
use crate::meta::Meta;
use crate::schema::QualityRow;

/// Metadata keys of a quality file's provenance: the evaluation set (path and SHA-256), and
/// what was measured (engine, quantization, model, label), which the report matches to the
/// speed runs.
pub const META_SET: &str = "servebench.quality_set";
pub const META_SET_SHA256: &str = "servebench.quality_set_sha256";
pub const META_ENGINE: &str = "servebench.engine";
pub const META_QUANT: &str = "servebench.quant";
pub const META_MODEL: &str = "servebench.model";
pub const META_LABEL: &str = "servebench.label";

/// Bootstrap replicates and seed of every interval here (items or blocks resampled).
pub const REPS: usize = 2000;
pub const SEED: u64 = 0x51;
/// Level of every interval here.
pub const LEVEL: f64 = 0.95;

/// What went wrong reading or comparing quality files.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompareError(pub String);

/// Read a quality file's rows and provenance.
pub fn read_rows(path: &Path) -> Result<(Vec<QualityRow>, Meta), CompareError> {
    crate::io::cols::read_rows::<QualityRow>(
        &path.display().to_string(),
        &[crate::schema::quality::col::ITEM_ID],
        "the columns the quality tool writes (is this a quality file?)",
    )
    .map_err(|e| CompareError(e.to_string()))
}

fn positions(rows: &[QualityRow], id: &str) -> Result<Vec<Position>, CompareError> {
    let mut v: Vec<&QualityRow> = rows
        .iter()
        .filter(|r| r.item_id == id && r.position.is_some())
        .collect();
    v.sort_by_key(|r| r.position);
    v.into_iter()
        .map(|r| {
            let top: Vec<(String, f64)> = match r.top_logprobs_json.as_deref() {
                Some(s) => serde_json::from_str(s)
                    .map_err(|e| CompareError(format!("item {id}: bad top_logprobs_json: {e}")))?,
                None => Vec::new(),
            };
            Ok(Position {
                token: r.position_token.clone().unwrap_or_default(),
                logprob: r.token_logprob,
                top,
            })
        })
        .collect()
}

/// A variant against its baseline: the pooled teacher-forced measures with their block-bootstrap
/// intervals, perplexities, greedy agreement and the accuracy change with its paired interval.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comparison {
    pub tf: TeacherForced,
    /// Resampling units of the teacher-forced intervals (blocks of passage positions).
    pub blocks: usize,
    pub intervals: BlockIntervals,
    pub perplexity_baseline: Option<f64>,
    pub perplexity_variant: Option<f64>,
    pub greedy: Option<GreedyAgreement>,
    pub accuracy: Option<AccuracyDiff>,
    /// Items of the baseline that the variant lacks.
    pub missing: Vec<String>,
    /// Log probabilities per position (each side's --top-k).
    pub top_k: (Option<u32>, Option<u32>),
}

impl Comparison {
    /// Share of compared positions whose top-1 tokens differ.
    pub fn disagreement(&self) -> Option<f64> {
        self.tf.agreement().map(|a| 1.0 - a)
    }
    pub fn perplexity_ratio(&self) -> Option<f64> {
        self.perplexity_baseline
            .zip(self.perplexity_variant)
            .map(|(b, v)| v / b)
    }
    pub fn mean_p_tail(&self) -> Option<f64> {
        (self.tf.positions > 0).then(|| self.tf.p_tail_sum / self.tf.positions as f64)
    }

    /// The comparison as `quality --baseline` prints it (every interval a `[lo, hi]` pair).
    pub fn to_json(&self) -> Value {
        let pair = |c: Option<(f64, f64)>| c.map(|(a, b)| [a, b]);
        let acc = self.accuracy;
        let g = self.greedy;
        let tf = &self.tf;
        json!({
            "positions": tf.positions,
            "blocks": self.blocks,
            crate::schema::quality::col::TOP_K: [self.top_k.0, self.top_k.1],
            "top1_agreement": tf.agreement(),
            "top1_disagreement": self.disagreement(),
            "top1_disagreement_ci95": pair(self.intervals.disagreement),
            "mean_kl": tf.mean_kl(),
            "mean_kl_ci95": pair(self.intervals.mean_kl),
            "max_kl": (tf.positions > 0).then_some(tf.kl_max),
            "mean_p_tail": self.mean_p_tail(),
            "perplexity_baseline": self.perplexity_baseline,
            "perplexity_variant": self.perplexity_variant,
            "perplexity_ratio": self.perplexity_ratio(),
            "perplexity_ratio_ci95": pair(self.intervals.perplexity_ratio),
            "greedy_prompts": g.map(|g| g.prompts),
            "greedy_mean_common_prefix": g.map(|g| g.mean_common_prefix),
            "greedy_identical_share": g.map(|g| g.identical_share),
            "tasks": acc.map(|a| a.items),
            "accuracy_baseline": acc.map(|a| a.base),
            "accuracy_variant": acc.map(|a| a.variant),
            "accuracy_diff_points": acc.map(|a| a.diff_points),
            "accuracy_diff_ci95": acc.map(|a| [a.lo, a.hi]),
            "missing_in_variant": self.missing,
        })
    }
}

/// Compare two quality files (the baseline's, then the variant's).
pub fn compare_files(base: &Path, variant: &Path) -> Result<Comparison, CompareError> {
    let (b, bm) = read_rows(base)?;
    let (v, vm) = read_rows(variant)?;
    compare(&b, &bm, &v, &vm).map_err(|e| CompareError(format!("{} vs {}: {e}", base.display(), variant.display())))
}

/// Compare a variant's rows with its baseline's. Two files measured on different evaluation
/// sets (their SHA-256 in the metadata) are not compared.
pub fn compare(b: &[QualityRow], bm: &Meta, v: &[QualityRow], vm: &Meta) -> Result<Comparison, CompareError> {
    if bm.get(META_SET_SHA256) != vm.get(META_SET_SHA256) {
        return Err(CompareError(format!(
            "measured on different evaluation sets (SHA-256 {:?} vs {:?})",
            bm.get(META_SET_SHA256),
            vm.get(META_SET_SHA256)
        )));
    }
    let ids = |rows: &[QualityRow], kind: &str| -> Vec<String> {
        let mut s: Vec<String> = rows
            .iter()
            .filter(|r| r.item_kind == kind)
            .map(|r| r.item_id.clone())
            .collect();
        s.dedup();
        s
    };
    let mut c = Comparison {
        top_k: (b.first().map(|r| r.top_k), v.first().map(|r| r.top_k)),
        ..Default::default()
    };
    let mut all: Vec<Block> = Vec::new();
    let (mut pb, mut pv) = (Vec::new(), Vec::new());
    for id in &ids(b, "passage") {
        let (x, y) = (positions(b, id)?, positions(v, id)?);
        if y.is_empty() {
            c.missing.push(id.clone());
            continue;
        }
        let bl = blocks(&x, &y).map_err(|e| CompareError(format!("passage {id}: {e}")))?;
        for k in &bl {
            c.tf.add(&k.tf);
        }
        all.extend(bl);
        pb.extend(x);
        pv.extend(y);
    }
    c.blocks = all.len();
    c.intervals = block_intervals(&all, REPS, SEED, LEVEL).unwrap_or_default();
    c.perplexity_baseline = perplexity(&pb);
    c.perplexity_variant = perplexity(&pv);
    let mut pairs = Vec::new();
    let mut greedy = Vec::new();
    for r in b.iter().filter(|r| r.item_kind == "task") {
        let Some(o) = v.iter().find(|o| o.item_kind == "task" && o.item_id == r.item_id) else {
            c.missing.push(r.item_id.clone());
            continue;
        };
        pairs.push((r.correct.unwrap_or(false), o.correct.unwrap_or(false)));
        let toks = |q: &QualityRow| -> Vec<String> {
            q.output_tokens_json
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default()
        };
        greedy.push((toks(r), toks(o)));
    }
    c.accuracy = accuracy_diff(&pairs, REPS, SEED, LEVEL);
    c.greedy = greedy_agreement(&greedy);
    Ok(c)
}
