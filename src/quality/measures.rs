//! The quality measures, each defined once: teacher-forced top-1 agreement and KL divergence
//! from top-k log probabilities, perplexity, greedy-generation agreement and task accuracy.
//!
//! # KL from top-k log probabilities
//!
//! An engine returns, per position, the log probabilities of its k most likely tokens, not the
//! whole distribution. For the baseline P and the variant Q at one position, let B be the tokens
//! present in *both* top-k lists. The estimator coarse-grains both distributions onto the
//! buckets `B ∪ {tail}`, where the tail holds all the remaining mass (`1 - Σ_B p`, `1 - Σ_B q`):
//!
//! ```text
//! KL̂(P‖Q) = Σ_{t∈B} p_t ln(p_t / q_t) + p_tail ln(p_tail / q_tail)
//! ```
//!
//! By the log-sum inequality (data processing: merging outcomes never increases divergence)
//! `0 ≤ KL̂ ≤ KL`: the estimator is biased *low*, never high. The bias is exactly
//! `p_tail · KL(P|tail ‖ Q|tail)`, the divergence hidden inside the tail, weighted by the
//! baseline's tail mass. It vanishes when the two top-k lists cover the support (k at least
//! the vocabulary's effective size) and shrinks as k grows because `p_tail` does; it is not
//! bounded by `p_tail` alone (the tail may hold tokens whose ratio is extreme), so every
//! position also reports `p_tail`: a small tail mass means little room for hidden divergence.
//! Engines round log probabilities (and may report `-inf`/`-9999`); a tail mass below zero from
//! rounding is clamped to 0 and a tail probability of the variant is floored at [`FLOOR`].

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::stats::{percentile_sorted, sort};

/// Smallest probability the estimator uses for a variant bucket (rounding can leave a tail of
/// zero or below while the baseline still has mass there).
pub const FLOOR: f64 = 1e-12;

/// One scored position: the token that was there, its log probability, and the top-k
/// alternatives (token text, log probability), as the engine returned them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Position {
    pub token: String,
    /// Log probability of `token` (None where the engine gives none, e.g. the first prompt token).
    pub logprob: Option<f64>,
    pub top: Vec<(String, f64)>,
}

impl Position {
    /// The most likely token of the top-k list (None when the list is empty).
    pub fn top1(&self) -> Option<&str> {
        self.top
            .iter()
            .filter(|(_, lp)| !lp.is_nan())
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(t, _)| t.as_str())
    }
}

fn prob(lp: f64) -> f64 {
    if lp.is_nan() { 0.0 } else { lp.exp() }
}

/// The estimate at one position: KL̂(P‖Q) and the baseline's tail mass `p_tail`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlEstimate {
    pub kl: f64,
    pub p_tail: f64,
}

/// KL̂(P‖Q) from the baseline's and the variant's top-k lists (see the module docs).
/// None when the baseline list is empty (nothing to compare).
pub fn kl_topk(base: &[(String, f64)], variant: &[(String, f64)]) -> Option<KlEstimate> {
    if base.is_empty() {
        return None;
    }
    let mut kl = 0.0;
    let (mut sp, mut sq) = (0.0, 0.0);
    for (t, lp) in base {
        let p = prob(*lp);
        let Some((_, lq)) = variant.iter().find(|(u, _)| u == t) else {
            continue;
        };
        let q = prob(*lq);
        sp += p;
        sq += q;
        if p > 0.0 {
            kl += p * (p / q.max(FLOOR)).ln();
        }
    }
    let p_tail = (1.0 - sp).max(0.0);
    let q_tail = (1.0 - sq).max(FLOOR);
    if p_tail > 0.0 {
        kl += p_tail * (p_tail / q_tail).ln();
    }
    // Rounded inputs can push a true zero a hair below it; the estimator is non-negative.
    Some(KlEstimate {
        kl: kl.max(0.0),
        p_tail,
    })
}

/// Per-position teacher-forced comparison of one scored sequence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TeacherForced {
    /// Positions compared (both sides had a top-k list).
    pub positions: usize,
    /// Positions whose top-1 tokens agree.
    pub agree: usize,
    /// Σ KL̂ over the compared positions.
    pub kl_sum: f64,
    /// Largest KL̂ at one position.
    pub kl_max: f64,
    /// Σ p_tail over the compared positions (mean tail mass = p_tail_sum / positions).
    pub p_tail_sum: f64,
}

impl TeacherForced {
    pub fn mean_kl(&self) -> Option<f64> {
        (self.positions > 0).then(|| self.kl_sum / self.positions as f64)
    }
    pub fn agreement(&self) -> Option<f64> {
        (self.positions > 0).then(|| self.agree as f64 / self.positions as f64)
    }
    pub fn add(&mut self, o: &TeacherForced) {
        self.positions += o.positions;
        self.agree += o.agree;
        self.kl_sum += o.kl_sum;
        self.kl_max = self.kl_max.max(o.kl_max);
        self.p_tail_sum += o.p_tail_sum;
    }
}

/// Compare the same token sequence scored by the baseline and the variant, position by
/// position. The two must have the same tokens; `Err` names the first position that differs.
pub fn teacher_forced(base: &[Position], variant: &[Position]) -> Result<TeacherForced, String> {
    if base.len() != variant.len() {
        return Err(format!(
            "the baseline scored {} positions and the variant {}: the two did not see the same tokens (same model and tokenizer?)",
            base.len(),
            variant.len()
        ));
    }
    let mut r = TeacherForced::default();
    for (i, (b, v)) in base.iter().zip(variant).enumerate() {
        if b.token != v.token {
            return Err(format!(
                "position {i}: the baseline scored token {:?} and the variant {:?}: the two did not see the same tokens",
                b.token, v.token
            ));
        }
        let Some(est) = kl_topk(&b.top, &v.top) else { continue };
        if v.top.is_empty() {
            continue;
        }
        r.positions += 1;
        r.kl_sum += est.kl;
        r.kl_max = r.kl_max.max(est.kl);
        r.p_tail_sum += est.p_tail;
        if b.top1().is_some() && b.top1() == v.top1() {
            r.agree += 1;
        }
    }
    Ok(r)
}

/// Positions per resampling unit of the teacher-forced intervals: each passage is cut into
/// consecutive blocks of this many scored positions (the last one shorter), and the bootstrap
/// resamples blocks. An evaluation set has few passages (the checked-in one six), too few to
/// resample; a block keeps the dependence of neighbouring positions inside the unit.
pub const BLOCK: usize = 8;

/// The sums of one resampling unit (a block of a passage's positions): the teacher-forced
/// comparison and each side's log probabilities (for perplexity).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    pub tf: TeacherForced,
    /// Σ ln p(token) and the positions that carry one, baseline then variant.
    pub lp_base: (f64, usize),
    pub lp_variant: (f64, usize),
}

fn lp_sum(ps: &[Position]) -> (f64, usize) {
    ps.iter()
        .filter_map(|p| p.logprob)
        .filter(|l| l.is_finite())
        .fold((0.0, 0), |(s, n), l| (s + l, n + 1))
}

/// The blocks of one passage scored by both (see [`BLOCK`]); `Err` as [`teacher_forced`].
pub fn blocks(base: &[Position], variant: &[Position]) -> Result<Vec<Block>, String> {
    teacher_forced(base, variant)?;
    Ok(base
        .chunks(BLOCK)
        .zip(variant.chunks(BLOCK))
        .map(|(b, v)| Block {
            tf: teacher_forced(b, v).unwrap_or_default(),
            lp_base: lp_sum(b),
            lp_variant: lp_sum(v),
        })
        .collect())
}

/// The teacher-forced measures of a set of blocks, pooled (ratios of sums): top-1
/// disagreement, mean KL̂ and the perplexity ratio (variant / baseline).
fn pooled(bs: &[&Block]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let mut tf = TeacherForced::default();
    let (mut sb, mut nb, mut sv, mut nv) = (0.0, 0usize, 0.0, 0usize);
    for b in bs {
        tf.add(&b.tf);
        sb += b.lp_base.0;
        nb += b.lp_base.1;
        sv += b.lp_variant.0;
        nv += b.lp_variant.1;
    }
    let ratio = (nb > 0 && nv > 0).then(|| (sb / nb as f64 - sv / nv as f64).exp());
    (tf.agreement().map(|a| 1.0 - a), tf.mean_kl(), ratio)
}

/// 95% (or `level`) percentile-bootstrap intervals of the teacher-forced measures, each
/// `(lo, hi)`; None where the measure is missing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BlockIntervals {
    pub disagreement: Option<(f64, f64)>,
    pub mean_kl: Option<(f64, f64)>,
    pub perplexity_ratio: Option<(f64, f64)>,
}

/// Resample the blocks with replacement `reps` times (seeded) and take the percentile interval
/// of each pooled measure. None when there are no blocks.
pub fn block_intervals(bs: &[Block], reps: usize, seed: u64, level: f64) -> Option<BlockIntervals> {
    use rand::RngExt;
    let n = bs.len();
    if n == 0 || reps == 0 {
        return None;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (mut d, mut k, mut r) = (Vec::new(), Vec::new(), Vec::new());
    let mut pick: Vec<&Block> = Vec::with_capacity(n);
    for _ in 0..reps {
        pick.clear();
        pick.extend((0..n).map(|_| &bs[rng.random_range(0..n)]));
        let (a, b, c) = pooled(&pick);
        d.extend(a);
        k.extend(b);
        r.extend(c);
    }
    let a = (1.0 - level) / 2.0;
    let ci = |mut v: Vec<f64>| -> Option<(f64, f64)> {
        if v.is_empty() {
            return None;
        }
        sort(&mut v);
        Some((percentile_sorted(&v, a)?, percentile_sorted(&v, 1.0 - a)?))
    };
    Some(BlockIntervals {
        disagreement: ci(d),
        mean_kl: ci(k),
        perplexity_ratio: ci(r),
    })
}

/// Perplexity `exp(-mean ln p(token))` over the positions that carry a log probability.
/// None when none does.
pub fn perplexity(positions: &[Position]) -> Option<f64> {
    let lps: Vec<f64> = positions
        .iter()
        .filter_map(|p| p.logprob)
        .filter(|l| l.is_finite())
        .collect();
    if lps.is_empty() {
        return None;
    }
    Some((-lps.iter().sum::<f64>() / lps.len() as f64).exp())
}

/// Length of the common prefix of two token sequences.
pub fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Greedy-generation agreement over prompts: mean common-prefix length (tokens) and the share
/// of outputs that are identical.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GreedyAgreement {
    pub prompts: usize,
    pub mean_common_prefix: f64,
    pub identical_share: f64,
}

pub fn greedy_agreement(pairs: &[(Vec<String>, Vec<String>)]) -> Option<GreedyAgreement> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let prefix: usize = pairs.iter().map(|(a, b)| common_prefix(a, b)).sum();
    let same = pairs.iter().filter(|(a, b)| a == b).count();
    Some(GreedyAgreement {
        prompts: pairs.len(),
        mean_common_prefix: prefix as f64 / n,
        identical_share: same as f64 / n,
    })
}

/// Normalise an answer for exact match: surrounding whitespace, a trailing period and case are
/// ignored; only the first line of the output counts.
pub fn normalize_answer(s: &str) -> String {
    let first = s.trim().lines().next().unwrap_or("").trim();
    first.trim_end_matches('.').trim().to_lowercase()
}

/// Exact match of an output against the expected answer (after [`normalize_answer`]).
pub fn exact_match(output: &str, answer: &str) -> bool {
    normalize_answer(output) == normalize_answer(answer)
}

/// Accuracy change of the variant against the baseline on the same items, in percentage points,
/// with a paired percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracyDiff {
    pub items: usize,
    pub base: f64,
    pub variant: f64,
    /// variant - baseline, points.
    pub diff_points: f64,
    pub lo: f64,
    pub hi: f64,
}

/// `pairs[i] = (baseline correct, variant correct)` for item i. The bootstrap resamples items
/// (paired: both sides of an item move together) `reps` times with `seed`; `level` e.g. 0.95.
pub fn accuracy_diff(pairs: &[(bool, bool)], reps: usize, seed: u64, level: f64) -> Option<AccuracyDiff> {
    use rand::RngExt;
    let n = pairs.len();
    if n == 0 || reps == 0 {
        return None;
    }
    let d: Vec<f64> = pairs.iter().map(|&(b, v)| v as u8 as f64 - b as u8 as f64).collect();
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let base = pairs.iter().filter(|p| p.0).count() as f64 / n as f64;
    let variant = pairs.iter().filter(|p| p.1).count() as f64 / n as f64;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut r: Vec<f64> = (0..reps)
        .map(|_| (0..n).map(|_| d[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    sort(&mut r);
    let a = (1.0 - level) / 2.0;
    Some(AccuracyDiff {
        items: n,
        base,
        variant,
        diff_points: 100.0 * mean(&d),
        lo: 100.0 * percentile_sorted(&r, a)?,
        hi: 100.0 * percentile_sorted(&r, 1.0 - a)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(v: &[(&str, f64)]) -> Vec<(String, f64)> {
        v.iter().map(|(t, p)| (t.to_string(), p.ln())).collect()
    }

    fn exact_kl(p: &[f64], q: &[f64]) -> f64 {
        p.iter()
            .zip(q)
            .map(|(a, b)| if *a > 0.0 { a * (a / b).ln() } else { 0.0 })
            .sum()
    }

    #[test]
    fn full_support_gives_the_exact_kl() {
        let p = [0.5, 0.3, 0.2];
        let q = [0.4, 0.4, 0.2];
        let e = kl_topk(
            &lp(&[("a", 0.5), ("b", 0.3), ("c", 0.2)]),
            &lp(&[("a", 0.4), ("b", 0.4), ("c", 0.2)]),
        )
        .unwrap();
        assert!((e.kl - exact_kl(&p, &q)).abs() < 1e-12, "{e:?}");
        assert!(e.p_tail < 1e-12);
    }

    #[test]
    fn identical_distributions_give_zero() {
        let a = lp(&[("x", 0.6), ("y", 0.25)]);
        let e = kl_topk(&a, &a).unwrap();
        assert!(e.kl.abs() < 1e-12);
        assert!((e.p_tail - 0.15).abs() < 1e-12);
    }

    #[test]
    fn truncation_is_the_coarse_grained_kl_and_a_lower_bound() {
        // Vocabulary a,b,c,d; top-2 lists see a,b; c,d merge into the tail.
        let p = [0.5, 0.3, 0.15, 0.05];
        let q = [0.4, 0.3, 0.05, 0.25];
        let e = kl_topk(&lp(&[("a", 0.5), ("b", 0.3)]), &lp(&[("a", 0.4), ("b", 0.3)])).unwrap();
        let coarse = exact_kl(&[0.5, 0.3, 0.2], &[0.4, 0.3, 0.3]);
        assert!((e.kl - coarse).abs() < 1e-12, "{} vs {coarse}", e.kl);
        let truth = exact_kl(&p, &q);
        assert!(e.kl < truth, "estimator must be biased low: {} vs {truth}", e.kl);
        // The gap is exactly p_tail * KL(P|tail || Q|tail).
        let gap = 0.2 * exact_kl(&[0.75, 0.25], &[1.0 / 6.0, 5.0 / 6.0]);
        assert!((truth - e.kl - gap).abs() < 1e-12);
    }

    #[test]
    fn tokens_missing_from_the_variant_list_go_to_the_tail() {
        // Variant's top-2 is a,c; the baseline's is a,b: only a is shared.
        let e = kl_topk(&lp(&[("a", 0.5), ("b", 0.3)]), &lp(&[("a", 0.4), ("c", 0.35)])).unwrap();
        let coarse = exact_kl(&[0.5, 0.5], &[0.4, 0.6]);
        assert!((e.kl - coarse).abs() < 1e-12);
        assert!((e.p_tail - 0.5).abs() < 1e-12);
    }

    #[test]
    fn teacher_forced_counts_agreement_and_rejects_different_tokens() {
        let pos = |tok: &str, top: &[(&str, f64)]| Position {
            token: tok.into(),
            logprob: top.iter().find(|(t, _)| *t == tok).map(|(_, p)| p.ln()),
            top: lp(top),
        };
        let base = vec![pos("a", &[("a", 0.7), ("b", 0.2)]), pos("b", &[("a", 0.5), ("b", 0.4)])];
        let var = vec![pos("a", &[("a", 0.7), ("b", 0.2)]), pos("b", &[("b", 0.5), ("a", 0.4)])];
        let r = teacher_forced(&base, &var).unwrap();
        assert_eq!((r.positions, r.agree), (2, 1));
        assert!((r.kl_sum - exact_kl(&[0.5, 0.4, 0.1], &[0.4, 0.5, 0.1])).abs() < 1e-12);
        let mut other = var.clone();
        other[1].token = "c".into();
        assert!(teacher_forced(&base, &other).unwrap_err().contains("position 1"));
        assert!(teacher_forced(&base, &var[..1]).is_err());
    }

    #[test]
    fn perplexity_of_known_logprobs() {
        let ps: Vec<Position> = [0.5f64, 0.25, 0.125]
            .iter()
            .map(|p| Position {
                logprob: Some(p.ln()),
                ..Default::default()
            })
            .chain(std::iter::once(Position::default()))
            .collect();
        // exp(-(ln .5 + ln .25 + ln .125)/3) = exp(2 ln 2) = 4
        assert!((perplexity(&ps).unwrap() - 4.0).abs() < 1e-12);
        assert_eq!(perplexity(&[Position::default()]), None);
    }

    #[test]
    fn greedy_prefix_and_identical_share() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let g = greedy_agreement(&[
            (s(&["a", "b", "c"]), s(&["a", "b", "c"])),
            (s(&["a", "b", "c"]), s(&["a", "x", "c"])),
        ])
        .unwrap();
        assert_eq!(g.prompts, 2);
        assert!((g.mean_common_prefix - 2.0).abs() < 1e-12);
        assert!((g.identical_share - 0.5).abs() < 1e-12);
    }

    #[test]
    fn exact_match_normalises_only_case_space_and_period() {
        assert!(exact_match(" 42.\nbecause", "42"));
        assert!(exact_match("Paris", "paris"));
        assert!(!exact_match("420", "42"));
        assert!(!exact_match("", "0"));
    }

    #[test]
    fn block_intervals_hold_the_pooled_estimate_and_shrink_to_it_when_blocks_agree() {
        // 20 positions: base certain of "a"; the variant moves mass to "b" at every 4th position
        let pos = |q: f64| Position {
            token: "a".into(),
            logprob: Some(q.ln()),
            top: lp(&[("a", q), ("b", 1.0 - q)]),
        };
        let base: Vec<Position> = (0..20).map(|_| pos(0.9)).collect();
        let var: Vec<Position> = (0..20).map(|i| pos(if i % 4 == 0 { 0.3 } else { 0.9 })).collect();
        let bs = blocks(&base, &var).unwrap();
        assert_eq!(bs.len(), 3, "blocks of {BLOCK}: 8, 8, 4");
        let mut all = TeacherForced::default();
        bs.iter().for_each(|b| all.add(&b.tf));
        assert_eq!(all, teacher_forced(&base, &var).unwrap());
        let iv = block_intervals(&bs, 500, 3, 0.95).unwrap();
        let (lo, hi) = iv.mean_kl.unwrap();
        let kl = all.mean_kl().unwrap();
        assert!(lo <= kl && kl <= hi && lo > 0.0, "{iv:?} vs {kl}");
        let (dlo, dhi) = iv.disagreement.unwrap();
        assert!(dlo <= 0.25 && 0.25 <= dhi, "{iv:?}");
        // the variant is the baseline: every replicate is the point
        let same = blocks(&base, &base).unwrap();
        let iv = block_intervals(&same, 200, 3, 0.95).unwrap();
        assert_eq!(iv.mean_kl, Some((0.0, 0.0)));
        assert_eq!(iv.disagreement, Some((0.0, 0.0)));
        assert_eq!(iv.perplexity_ratio, Some((1.0, 1.0)));
        assert_eq!(block_intervals(&[], 100, 3, 0.95), None);
    }

    #[test]
    fn accuracy_difference_and_its_interval() {
        // 100 items: baseline right on 80, variant on 70, all variant-right items baseline-right.
        let pairs: Vec<(bool, bool)> = (0..100).map(|i| (i < 80, i < 70)).collect();
        let a = accuracy_diff(&pairs, 2000, 7, 0.95).unwrap();
        assert!((a.base - 0.8).abs() < 1e-12 && (a.variant - 0.7).abs() < 1e-12);
        assert!((a.diff_points + 10.0).abs() < 1e-9);
        // Paired: d is -1 on 10 items, 0 elsewhere; sd of the mean = sqrt(.1*.9/100) = 3 points.
        assert!(a.lo < -14.0 && a.lo > -18.0, "{a:?}");
        assert!(a.hi > -6.0 && a.hi < -3.0, "{a:?}");
        let same: Vec<(bool, bool)> = (0..50).map(|i| (i % 3 == 0, i % 3 == 0)).collect();
        let z = accuracy_diff(&same, 500, 1, 0.95).unwrap();
        assert_eq!((z.diff_points, z.lo, z.hi), (0.0, 0.0, 0.0));
    }
}
