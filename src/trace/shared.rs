//! The shared-prefix workload (`tracegen ... --prefix-groups G`): groups of requests that
//! share a system prompt of P tokens, each followed by its own suffix.
//!
//! A row's `prefix_blocks` are its group's P / 512 block ids, then ids of its own suffix
//! blocks (one per started 512 tokens of the suffix), so replay's prompt builder gives every
//! row of a group the same first P tokens of text and every row a different rest (Mooncake's
//! convention: equal ids, identical text). The group of each request is drawn from the
//! popularity (uniform, or Zipf with exponent s: group k, counted from 0, has weight
//! 1 / (k + 1)^s), then put in the order asked: `random` as drawn, `grouped` every request of
//! group 0 first, then group 1, ... (each prefix's requests back to back, the kindest order
//! for a prefix cache), `round-robin` one request of each group in turn (the harshest: a
//! cache smaller than the G prefixes evicts each before it is used again). The three orders
//! have the same number of requests in each group for the same seed. Everything is seeded.

use std::str::FromStr;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::BLOCK_TOKENS;
use super::synth::stream_seed;
use super::tokens::SplitMix;

/// How often each group is used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Popularity {
    Uniform,
    /// Weight of group k (from 0): 1 / (k + 1)^s.
    Zipf(f64),
}

impl FromStr for Popularity {
    type Err = String;
    /// `uniform`, `zipf` (s = 1) or `zipf:S`
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid popularity {s:?}: use uniform, zipf or zipf:S (S > 0, e.g. zipf:1.2)");
        match s.split_once(':') {
            None if s == "uniform" => Ok(Popularity::Uniform),
            None if s == "zipf" => Ok(Popularity::Zipf(1.0)),
            Some(("zipf", x)) => {
                let v: f64 = x.trim().parse().map_err(|_| bad())?;
                if v.is_finite() && v > 0.0 {
                    Ok(Popularity::Zipf(v))
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Popularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Popularity::Uniform => write!(f, "uniform"),
            Popularity::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// The order in which the groups' requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// Each request's group as drawn from the popularity, independently
    Random,
    /// Every request of group 0, then of group 1, ... (needs --count)
    Grouped,
    /// One request of each group in turn, while a group has requests left (needs --count)
    RoundRobin,
}

impl Order {
    pub fn name(self) -> &'static str {
        match self {
            Order::Random => "random",
            Order::Grouped => "grouped",
            Order::RoundRobin => "round-robin",
        }
    }
}

/// The shared-prefix workload's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedPrefix {
    pub groups: u32,
    /// The shared system prompt, tokens: a whole number of prefix blocks.
    pub prefix_tokens: u32,
    pub popularity: Popularity,
    pub order: Order,
}

impl SharedPrefix {
    pub fn validate(&self, count: Option<u64>) -> Result<(), String> {
        if self.groups == 0 {
            return Err("--prefix-groups must be at least 1".into());
        }
        if self.prefix_tokens == 0 || !self.prefix_tokens.is_multiple_of(BLOCK_TOKENS) {
            return Err(format!(
                "--prefix-len must be a whole number of {BLOCK_TOKENS}-token prefix blocks ({BLOCK_TOKENS}, {}, ...), got {}",
                2 * BLOCK_TOKENS,
                self.prefix_tokens
            ));
        }
        if self.order != Order::Random && count.is_none() {
            return Err(format!(
                "--prefix-order {} arranges all the requests at once, so it needs --count N",
                self.order.name()
            ));
        }
        if count.is_some_and(|n| n > 50_000_000) && self.order != Order::Random {
            return Err(
                "--prefix-order grouped or round-robin holds every request's group: at most 50,000,000 requests".into(),
            );
        }
        Ok(())
    }

    /// What the trace's metadata says of the workload.
    pub fn describe(&self) -> String {
        format!(
            "groups={},prefix_tokens={},popularity={},order={}",
            self.groups,
            self.prefix_tokens,
            self.popularity,
            self.order.name()
        )
    }

    /// Blocks of the shared prefix.
    pub fn blocks(&self) -> u32 {
        self.prefix_tokens / BLOCK_TOKENS
    }

    /// The prefix blocks of a row of `group` with `suffix_tokens` of its own.
    pub fn row_blocks(&self, seed: u64, group: u32, request_id: u64, suffix_tokens: u32) -> Vec<u64> {
        let own = suffix_tokens.div_ceil(BLOCK_TOKENS);
        let mut v = Vec::with_capacity((self.blocks() + own) as usize);
        let salt = stream_seed(seed, 6);
        for k in 0..self.blocks() {
            v.push(block_id(salt, group as u64, k as u64));
        }
        // suffix ids live apart from the group ids (the high bit set)
        for k in 0..own {
            v.push(block_id(salt ^ 0x5AFF_1C5E, request_id, k as u64) | (1 << 63));
        }
        v
    }
}

fn block_id(salt: u64, a: u64, b: u64) -> u64 {
    let mut m = SplitMix(salt ^ a.wrapping_mul(0x9FB2_1C65_1E98_DF25) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    m.next_u64() & !(1 << 63)
}

/// Draws each request's group, in the order asked.
pub struct Groups {
    cdf: Vec<f64>,
    rng: Xoshiro256PlusPlus,
    /// grouped and round-robin: every request's group, arranged.
    planned: Option<std::vec::IntoIter<u32>>,
}

impl Groups {
    /// `count` must be given for grouped and round-robin (see [`SharedPrefix::validate`]).
    pub fn new(sp: &SharedPrefix, seed: u64, count: Option<u64>) -> Groups {
        let w: Vec<f64> = (0..sp.groups)
            .map(|k| match sp.popularity {
                Popularity::Uniform => 1.0,
                Popularity::Zipf(s) => 1.0 / ((k + 1) as f64).powf(s),
            })
            .collect();
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let cdf = w
            .iter()
            .map(|x| {
                acc += x / total;
                acc
            })
            .collect();
        let mut g = Groups {
            cdf,
            rng: Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, 5)),
            planned: None,
        };
        if sp.order != Order::Random {
            let n = count.unwrap_or(0) as usize;
            let mut drawn: Vec<u32> = (0..n).map(|_| g.draw()).collect();
            let planned = match sp.order {
                Order::Grouped => {
                    drawn.sort_unstable();
                    drawn
                }
                _ => {
                    let mut left = vec![0u64; sp.groups as usize];
                    for x in &drawn {
                        left[*x as usize] += 1;
                    }
                    let mut out = Vec::with_capacity(n);
                    while out.len() < n {
                        for (k, l) in left.iter_mut().enumerate() {
                            if *l > 0 {
                                *l -= 1;
                                out.push(k as u32);
                            }
                        }
                    }
                    out
                }
            };
            g.planned = Some(planned.into_iter());
        }
        g
    }

    fn draw(&mut self) -> u32 {
        let u: f64 = self.rng.random();
        let k = self.cdf.partition_point(|c| *c <= u);
        k.min(self.cdf.len() - 1) as u32
    }

    /// The next request's group.
    pub fn next_group(&mut self) -> u32 {
        match &mut self.planned {
            Some(p) => p.next().unwrap_or(0),
            None => self.draw(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(groups: u32, popularity: Popularity, order: Order) -> SharedPrefix {
        SharedPrefix {
            groups,
            prefix_tokens: 1024,
            popularity,
            order,
        }
    }

    fn counts(v: &[u32], g: u32) -> Vec<u64> {
        let mut c = vec![0u64; g as usize];
        for x in v {
            c[*x as usize] += 1;
        }
        c
    }

    #[test]
    fn popularity_parses() {
        assert_eq!("uniform".parse::<Popularity>().unwrap(), Popularity::Uniform);
        assert_eq!("zipf".parse::<Popularity>().unwrap(), Popularity::Zipf(1.0));
        assert_eq!("zipf:1.5".parse::<Popularity>().unwrap(), Popularity::Zipf(1.5));
        for bad in ["zipf:0", "zipf:-1", "zipf:x", "pareto", "uniform:2"] {
            assert!(bad.parse::<Popularity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn zipf_groups_follow_their_weights_and_orders_keep_the_counts() {
        let n = 60_000u64;
        let s = sp(5, Popularity::Zipf(1.0), Order::Random);
        let mut g = Groups::new(&s, 9, Some(n));
        let random: Vec<u32> = (0..n).map(|_| g.next_group()).collect();
        let c = counts(&random, 5);
        let h: f64 = (1..=5).map(|k| 1.0 / k as f64).sum();
        for (k, got) in c.iter().enumerate() {
            let want = n as f64 / ((k + 1) as f64 * h);
            assert!(
                (*got as f64 - want).abs() < 5.0 * want.sqrt(),
                "group {k}: {got} vs {want}"
            );
        }
        for order in [Order::Grouped, Order::RoundRobin] {
            let mut g = Groups::new(&SharedPrefix { order, ..s }, 9, Some(n));
            let v: Vec<u32> = (0..n).map(|_| g.next_group()).collect();
            assert_eq!(counts(&v, 5), c, "{order:?}");
            if order == Order::Grouped {
                assert!(v.windows(2).all(|w| w[0] <= w[1]));
            } else {
                assert_eq!(&v[..7], &[0, 1, 2, 3, 4, 0, 1]);
            }
        }
    }

    #[test]
    fn rows_of_a_group_share_exactly_the_prefix_blocks() {
        let s = sp(3, Popularity::Uniform, Order::Random);
        let a = s.row_blocks(1, 2, 10, 700);
        let b = s.row_blocks(1, 2, 11, 1);
        let c = s.row_blocks(1, 1, 12, 700);
        assert_eq!(a.len(), 2 + 2);
        assert_eq!(b.len(), 2 + 1);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        assert!(c[..2].iter().all(|x| !a.contains(x)));
        // another seed, another system prompt
        assert_ne!(s.row_blocks(2, 2, 10, 700)[0], a[0]);
        assert!(s.validate(None).is_ok());
        assert!(
            SharedPrefix {
                prefix_tokens: 1000,
                ..s
            }
            .validate(None)
            .is_err()
        );
        assert!(
            SharedPrefix {
                order: Order::Grouped,
                ..s
            }
            .validate(None)
            .is_err()
        );
        assert!(SharedPrefix { groups: 0, ..s }.validate(Some(1)).is_err());
    }
}
