//! The train / validation / test split of a model run: reproducible from the seed alone, independent of
//! image order, optionally stratified by a metadata field (`docs/model-runs.md`, "The split").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Split> {
        Split::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Shares of train, validation and test, as given (e.g. 80/10/10 or 0.8/0.1/0.1): only their ratios
/// matter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            train: 80.0,
            val: 10.0,
            test: 10.0,
        }
    }
}

impl SplitFractions {
    /// Parse `80,10,10` (or `0.8/0.1/0.1`).
    pub fn parse(s: &str) -> Result<SplitFractions, String> {
        let parts: Vec<&str> = s.split([',', '/']).map(str::trim).collect();
        let values: Result<Vec<f64>, _> = parts.iter().map(|p| p.parse::<f64>()).collect();
        match values.as_deref() {
            Ok(&[train, val, test]) => SplitFractions { train, val, test }.checked(),
            _ => Err(format!(
                "split {s:?} is not three numbers like 80,10,10 (train, validation, test)"
            )),
        }
    }

    pub fn checked(self) -> Result<SplitFractions, String> {
        let all = [self.train, self.val, self.test];
        if all.iter().any(|v| !v.is_finite() || *v < 0.0) || all.iter().sum::<f64>() <= 0.0 {
            return Err(format!(
                "split {}/{}/{} needs three shares that are not negative and not all zero",
                self.train, self.val, self.test
            ));
        }
        Ok(self)
    }

    /// How many of `n` items go to each split: largest remainders, ties to train, then val, then test.
    pub fn counts(&self, n: usize) -> [usize; 3] {
        let shares = [self.train, self.val, self.test];
        let total: f64 = shares.iter().sum();
        let exact: Vec<f64> = shares.iter().map(|s| s / total * n as f64).collect();
        let mut counts: [usize; 3] = [0; 3];
        for (c, e) in counts.iter_mut().zip(&exact) {
            *c = e.floor() as usize;
        }
        let mut order = [0usize, 1, 2];
        // Stable: equal remainders keep train, val, test order.
        order.sort_by(|&a, &b| {
            let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
            rb.total_cmp(&ra)
        });
        let mut left = n.saturating_sub(counts.iter().sum());
        for i in order.into_iter().cycle() {
            if left == 0 {
                break;
            }
            counts[i] += 1;
            left -= 1;
        }
        counts
    }
}

/// An image to split: its content hash (the key is derived from it, so the split follows the image
/// whatever it is named) and its stratum (a metadata value, or `None`).
pub struct SplitItem<'a> {
    pub sha256: &'a str,
    pub stratum: Option<String>,
}

fn split_key(seed: u64, sha256: &str) -> [u8; 32] {
    Sha256::digest(format!("{seed}:{sha256}").as_bytes()).into()
}

/// The split of each item, in the items' order. Within a stratum, items are ranked by key; each item's
/// place in its stratum is `(2·rank + 1) / (2·stratum size)`; all items are then ordered by place (exact
/// integer comparison), then key, and the first go to train, the next to validation, the rest to test, by
/// the counts of the whole set. So the totals are exact and every stratum is split in proportion, within
/// one image, even when it is too small to be split on its own.
pub fn assign_splits(items: &[SplitItem], fractions: &SplitFractions, seed: u64) -> Vec<Split> {
    let mut strata: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        strata.entry(item.stratum.as_deref()).or_default().push(i);
    }
    // (place numerator, place denominator, key, item index)
    let mut placed: Vec<(u128, u128, [u8; 32], usize)> = Vec::with_capacity(items.len());
    for members in strata.values() {
        let mut keyed: Vec<([u8; 32], usize)> = members
            .iter()
            .map(|&i| (split_key(seed, items[i].sha256), i))
            .collect();
        keyed.sort();
        let n = keyed.len() as u128;
        for (rank, (key, i)) in keyed.into_iter().enumerate() {
            placed.push((2 * rank as u128 + 1, 2 * n, key, i));
        }
    }
    placed.sort_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)).then(a.2.cmp(&b.2)));
    let [train, val, _] = fractions.counts(items.len());
    let mut out = vec![Split::Train; items.len()];
    for (rank, (_, _, _, i)) in placed.into_iter().enumerate() {
        out[i] = if rank < train {
            Split::Train
        } else if rank < train + val {
            Split::Val
        } else {
            Split::Test
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_largest_remainder() {
        let f = SplitFractions::default();
        assert_eq!(f.counts(10), [8, 1, 1]);
        assert_eq!(f.counts(92), [74, 9, 9]);
        assert_eq!(f.counts(3), [3, 0, 0]);
        assert_eq!(f.counts(0), [0, 0, 0]);
        assert_eq!(SplitFractions::parse("1,1,1").unwrap().counts(4), [2, 1, 1]);
    }

    #[test]
    fn parse_refuses_nonsense() {
        assert!(SplitFractions::parse("80,10").is_err());
        assert!(SplitFractions::parse("80,-10,30").is_err());
        assert!(SplitFractions::parse("0,0,0").is_err());
        assert_eq!(
            SplitFractions::parse("0.8/0.1/0.1").unwrap().counts(10),
            [8, 1, 1]
        );
    }

    fn hashes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{:064x}", i * 7919)).collect()
    }

    #[test]
    fn same_seed_same_split_whatever_the_order_and_additions() {
        let h = hashes(50);
        let items: Vec<SplitItem> = h
            .iter()
            .map(|s| SplitItem {
                sha256: s,
                stratum: None,
            })
            .collect();
        let a = assign_splits(&items, &SplitFractions::default(), 7);
        let reversed: Vec<SplitItem> = h
            .iter()
            .rev()
            .map(|s| SplitItem {
                sha256: s,
                stratum: None,
            })
            .collect();
        let mut b = assign_splits(&reversed, &SplitFractions::default(), 7);
        b.reverse();
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|s| **s == Split::Train).count(), 40);
        let other_seed = assign_splits(&items, &SplitFractions::default(), 8);
        assert_ne!(a, other_seed);
    }

    #[test]
    fn small_strata_still_fill_every_split() {
        // 23 strata of 4, as the dev set by organ: each alone would round to 3/1/0.
        let h = hashes(92);
        let items: Vec<SplitItem> = h
            .iter()
            .enumerate()
            .map(|(i, s)| SplitItem {
                sha256: s,
                stratum: Some(format!("organ{}", i / 4)),
            })
            .collect();
        let s = assign_splits(&items, &SplitFractions::default(), 3);
        let count = |x: Split| s.iter().filter(|y| **y == x).count();
        assert_eq!(
            [count(Split::Train), count(Split::Val), count(Split::Test)],
            [74, 9, 9]
        );
        for organ in s.chunks(4) {
            assert!(organ.iter().filter(|x| **x == Split::Train).count() >= 3);
        }
    }

    #[test]
    fn strata_are_split_in_proportion() {
        let h = hashes(20);
        let items: Vec<SplitItem> = h
            .iter()
            .enumerate()
            .map(|(i, s)| SplitItem {
                sha256: s,
                stratum: Some(if i < 10 { "colon" } else { "breast" }.into()),
            })
            .collect();
        let s = assign_splits(&items, &SplitFractions::default(), 1);
        for half in [&s[..10], &s[10..]] {
            assert_eq!(half.iter().filter(|x| **x == Split::Train).count(), 8);
            assert_eq!(half.iter().filter(|x| **x == Split::Test).count(), 1);
        }
    }
}
