//! COCO run-length encoding, bit-for-bit as pycocotools' `maskApi.c` (`rleEncode`, `rleToString`,
//! `rleFrString`, `rleArea`, `rleToBbox`), so exports load in pycocotools and decode to the same masks.
//!
//! Unlike the C code, decoding validates: a bundle is untrusted input, so a bad string is an error,
//! never a panic or a mask of the wrong size.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mask::Mask;

/// Serialized form, as in COCO and in the bundle: `{"size": [h, w], "counts": "<compressed string>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedRle {
    pub size: [u32; 2],
    pub counts: String,
}

/// Uncompressed: column-major walk (pixel (x, y) at index y + h·x); counts alternate
/// background/foreground starting with background (a mask starting with foreground begins with 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rle {
    pub height: u32,
    pub width: u32,
    pub counts: Vec<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RleError {
    #[error("RLE counts sum to {sum} but a {height}x{width} (h x w) mask has {expected} pixels")]
    WrongTotal {
        height: u32,
        width: u32,
        sum: u64,
        expected: u64,
    },
    #[error("RLE string has {found:?} at byte {at}; counts use only characters '0'..='o'")]
    BadCharacter { at: usize, found: char },
    #[error("RLE string ends in the middle of a count")]
    Truncated,
    #[error("RLE count {index} is too long to be a 32-bit count")]
    CountTooLong { index: usize },
    #[error("RLE count {index} decodes to {value}, outside 0..=4294967295")]
    CountOutOfRange { index: usize, value: i64 },
    #[error("label image has {found} values but a {width}x{height} (w x h) image has {expected}")]
    WrongLength {
        width: u32,
        height: u32,
        found: usize,
        expected: u64,
    },
}

/// `counts` without zero-length runs after the first: the runs on either side of one have the same colour
/// and become one. A merged run longer than a u32 is left split (the image would be over 4 G pixels).
fn canonical_runs(counts: Vec<u32>) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(counts.len());
    let mut merge_next = false;
    for (i, c) in counts.into_iter().enumerate() {
        if merge_next {
            merge_next = false;
            if let Some(sum) = out.last().and_then(|last| last.checked_add(c)) {
                if let Some(last) = out.last_mut() {
                    *last = sum;
                }
                continue;
            }
            out.extend([0, c]);
            continue;
        }
        if i > 0 && c == 0 {
            merge_next = true;
            continue;
        }
        out.push(c);
    }
    out
}

/// Characters carry 6 bits (value + 48); 5 of them data, 0x20 = "more groups follow".
const CHAR_BASE: u8 = 48;
/// A u32 delta needs at most 34 bits with its sign, i.e. 7 groups; more means garbage.
const MAX_GROUPS: u32 = 7;

impl Rle {
    /// Encode a mask (`rleEncode`): column by column, reading the bytes directly (a suggestion's mask is
    /// encoded on every click).
    pub fn from_mask(mask: &Mask) -> Rle {
        let mut counts = Vec::new();
        let (mut current, mut run) = (false, 0u32);
        let (width, height) = (mask.width as usize, mask.height as usize);
        for x in 0..width {
            let column = mask.data.get(x..).unwrap_or_default();
            for &byte in column.iter().step_by(width).take(height) {
                let v = byte != 0;
                if v != current {
                    counts.push(run);
                    run = 0;
                    current = v;
                }
                run += 1;
            }
        }
        counts.push(run);
        Rle {
            height: mask.height,
            width: mask.width,
            counts,
        }
    }

    /// Decode to a mask, a foreground run a column segment at a time. Runs past the end of the image are
    /// dropped (only possible when the fields were set by hand, bypassing [`Rle::from_counts`]).
    pub fn to_mask(&self) -> Mask {
        let mut mask = Mask::new(self.width, self.height);
        let (width, height) = (self.width as u64, self.height as u64);
        let mut index = 0u64;
        for (i, &run) in self.counts.iter().enumerate() {
            if i % 2 == 1 && height > 0 {
                // Column-major: index = y + height·x.
                let (mut x, mut y) = (index / height, index % height);
                let mut left = u64::from(run);
                while left > 0 && x < width {
                    let n = left.min(height - y);
                    for yy in y..y + n {
                        mask.data[(yy * width + x) as usize] = 1;
                    }
                    left -= n;
                    (x, y) = (x + 1, 0);
                }
            }
            index += u64::from(run);
        }
        mask
    }

    /// Build from uncompressed counts, checking they cover the image exactly. Zero-length runs after
    /// the first (which pycocotools never writes, but a hand-made or hostile string can hold) are merged
    /// away: pycocotools' `rleToBbox` would count one as a foreground pixel that is not in the mask (found
    /// by fuzzing), so the bbox and area of a label are always its pixels'.
    pub fn from_counts(height: u32, width: u32, counts: Vec<u32>) -> Result<Rle, RleError> {
        let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        let counts = canonical_runs(counts);
        let expected = u64::from(height) * u64::from(width);
        if sum != expected {
            return Err(RleError::WrongTotal {
                height,
                width,
                sum,
                expected,
            });
        }
        Ok(Rle {
            height,
            width,
            counts,
        })
    }

    /// Foreground pixels (`rleArea`: the sum of the odd-indexed runs).
    pub fn area(&self) -> u64 {
        self.counts
            .iter()
            .skip(1)
            .step_by(2)
            .map(|&c| u64::from(c))
            .sum()
    }

    /// `[x, y, w, h]` as pycocotools' `rleToBbox`, computed from the runs: zeros when empty. A
    /// foreground run that spans more than one column covers every row, so y is then 0..h.
    pub fn bbox(&self) -> [u32; 4] {
        let h = u64::from(self.height);
        // Only whole (background, foreground) pairs matter; a trailing background run cannot widen it.
        let pairs = self.counts.len() / 2 * 2;
        if pairs == 0 || h == 0 {
            return [0, 0, 0, 0];
        }
        let (mut xs, mut ys) = (u64::from(self.width), h);
        let (mut xe, mut ye, mut xp, mut cc) = (0u64, 0u64, 0u64, 0u64);
        for (j, &run) in self.counts[..pairs].iter().enumerate() {
            cc += u64::from(run);
            // Start of a foreground run, or the last pixel of one.
            let t = cc.saturating_sub((j % 2) as u64);
            let (y, x) = (t % h, t / h);
            if j % 2 == 0 {
                xp = x;
            } else if xp < x {
                ys = 0;
                ye = h - 1;
            }
            xs = xs.min(x);
            xe = xe.max(x);
            ys = ys.min(y);
            ye = ye.max(y);
        }
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        [clamp(xs), clamp(ys), clamp(xe - xs + 1), clamp(ye - ys + 1)]
    }

    /// The compressed string form (`rleToString`).
    pub fn compress(&self) -> CompressedRle {
        let mut s = String::new();
        for (i, &count) in self.counts.iter().enumerate() {
            let mut x = i64::from(count);
            // From the fourth count on, as in maskApi.c (`if(i>2)`), store the delta to two back.
            if i > 2 {
                x -= i64::from(self.counts[i - 2]);
            }
            loop {
                let mut c = (x & 0x1f) as u8;
                x >>= 5;
                let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
                if more {
                    c |= 0x20;
                }
                s.push(char::from(c + CHAR_BASE));
                if !more {
                    break;
                }
            }
        }
        CompressedRle {
            size: [self.height, self.width],
            counts: s,
        }
    }

    /// Parse the compressed string form (`rleFrString`), rejecting anything pycocotools would misread.
    pub fn decompress(c: &CompressedRle) -> Result<Rle, RleError> {
        let [height, width] = c.size;
        let bytes = c.counts.as_bytes();
        let mut counts: Vec<u32> = Vec::new();
        let mut p = 0;
        while p < bytes.len() {
            let index = counts.len();
            let (mut x, mut k) = (0i64, 0u32);
            loop {
                let Some(&byte) = bytes.get(p) else {
                    return Err(RleError::Truncated);
                };
                if !(CHAR_BASE..CHAR_BASE + 64).contains(&byte) {
                    // Every earlier byte was ASCII, so p is on a character boundary.
                    let found = c
                        .counts
                        .get(p..)
                        .and_then(|s| s.chars().next())
                        .unwrap_or('\u{fffd}');
                    return Err(RleError::BadCharacter { at: p, found });
                }
                if k >= MAX_GROUPS {
                    return Err(RleError::CountTooLong { index });
                }
                let v = i64::from(byte - CHAR_BASE);
                x |= (v & 0x1f) << (5 * k);
                p += 1;
                k += 1;
                if v & 0x20 == 0 {
                    if v & 0x10 != 0 {
                        // Sign-extend the last group.
                        x |= -1i64 << (5 * k);
                    }
                    break;
                }
            }
            if index > 2 {
                x += i64::from(counts[index - 2]);
            }
            let count =
                u32::try_from(x).map_err(|_| RleError::CountOutOfRange { index, value: x })?;
            counts.push(count);
        }
        Rle::from_counts(height, width, counts)
    }
}

/// Encode every instance of a label image (row-major, 0 = background, n = instance n) in one
/// column-major pass, without materializing a mask per label: a tile can hold thousands of labels.
/// Each result equals `Rle::from_mask` of that label's pixels.
pub fn encode_labels(
    width: u32,
    height: u32,
    labels_row_major: &[u16],
) -> Result<BTreeMap<u16, Rle>, RleError> {
    let total = u64::from(width) * u64::from(height);
    if labels_row_major.len() as u64 != total {
        return Err(RleError::WrongLength {
            width,
            height,
            found: labels_row_major.len(),
            expected: total,
        });
    }
    // Per label: its counts so far (ending with a foreground run) and the column-major index just past
    // its last pixel.
    let mut open: BTreeMap<u16, (Vec<u32>, u64)> = BTreeMap::new();
    let mut j = 0u64;
    for x in 0..width as usize {
        for y in 0..height as usize {
            let label = labels_row_major[y * width as usize + x];
            if label != 0 {
                let (counts, end) = open.entry(label).or_default();
                match counts.last_mut() {
                    Some(run) if *end == j => *run += 1,
                    _ => counts.extend([(j - *end) as u32, 1]),
                }
                *end = j + 1;
            }
            j += 1;
        }
    }
    open.into_iter()
        .map(|(label, (mut counts, end))| {
            // rleEncode ends with the last run as it is: no zero-length trailing background.
            if end < total {
                counts.push((total - end) as u32);
            }
            Rle::from_counts(height, width, counts).map(|rle| (label, rle))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn compressed(h: u32, w: u32, counts: &str) -> CompressedRle {
        CompressedRle {
            size: [h, w],
            counts: counts.to_owned(),
        }
    }

    /// Found by the `rle` fuzz target: "00?" on a 3x5 mask is runs [0, 0, 15], an empty mask whose
    /// bbox pycocotools' walk makes [0, 0, 1, 1]. Zero-length runs are merged, so it is empty, as drawn.
    #[test]
    fn zero_length_runs_do_not_make_pixels() {
        let rle = Rle::decompress(&compressed(3, 5, "00?")).unwrap();
        assert_eq!(rle.counts, vec![15]);
        assert_eq!((rle.area(), rle.bbox()), (0, [0, 0, 0, 0]));
        // Background 2, foreground 0, background 3, foreground 1: one pixel, at index 5 (x=1, y=2).
        let rle = Rle::from_counts(3, 2, vec![2, 0, 3, 1]).unwrap();
        assert_eq!(rle.counts, vec![5, 1]);
        assert_eq!((rle.area(), rle.bbox()), (1, [1, 2, 1, 1]));
        assert_eq!(rle.bbox(), Rle::from_mask(&rle.to_mask()).bbox());
    }

    /// Strings and boxes produced by pycocotools 2.0.11 `mask.encode` / `toBbox` for the same masks.
    #[test]
    fn matches_pycocotools_on_known_masks() {
        // 10x8, pixels (x=3, y=5) and (x=4, y=7).
        let mut m = Mask::new(8, 10);
        m.set(3, 5, true);
        m.set(4, 7, true);
        let rle = Rle::from_mask(&m);
        assert_eq!(rle.compress(), compressed(10, 8, "S11;0e0"));
        assert_eq!(rle.bbox(), [3, 5, 2, 3]);
        assert_eq!(rle.area(), 2);

        // Column 1 rows 2..4 and column 2 rows 6..9.
        let mut m = Mask::new(8, 10);
        m.fill_rect(1.0, 2.0, 2.0, 4.0, true);
        m.fill_rect(2.0, 6.0, 3.0, 9.0, true);
        assert_eq!(Rle::from_mask(&m).compress(), compressed(10, 8, "<2<1W1"));
        assert_eq!(Rle::from_mask(&m).bbox(), [1, 2, 2, 7]);

        let full = Mask::from_rows(&["###", "###", "###"]);
        assert_eq!(Rle::from_mask(&full).compress(), compressed(3, 3, "09"));
        assert_eq!(
            Rle::from_mask(&Mask::new(0, 0)).compress(),
            compressed(0, 0, "0")
        );
    }

    #[test]
    fn counts_are_column_major_starting_with_background() {
        let m = Mask::from_rows(&["#.", "#.", ".#"]);
        let rle = Rle::from_mask(&m);
        assert_eq!(rle.counts, [0, 2, 3, 1]);
        assert_eq!(rle.to_mask(), m);
    }

    #[test]
    fn bbox_of_a_run_spanning_columns_covers_all_rows() {
        // Foreground from the bottom of column 0 to the top of column 1: pycocotools reports full height.
        let m = Mask::from_rows(&[".#", "..", "#."]);
        assert_eq!(Rle::from_mask(&m).bbox(), [0, 0, 2, 3]);
        assert_eq!(Rle::from_mask(&Mask::new(4, 4)).bbox(), [0, 0, 0, 0]);
    }

    #[test]
    fn decompress_rejects_garbage_with_clear_errors() {
        assert_eq!(
            Rle::decompress(&compressed(2, 2, "0 ")),
            Err(RleError::BadCharacter { at: 1, found: ' ' })
        );
        assert_eq!(
            Rle::decompress(&compressed(2, 2, "0P")),
            Err(RleError::Truncated)
        );
        let err = Rle::decompress(&compressed(3, 3, "08")).unwrap_err();
        assert!(err.to_string().contains("sum to 8"), "{err}");
        assert!(matches!(
            Rle::decompress(&compressed(3, 3, "o")),
            Err(RleError::Truncated)
        ));
        assert!(matches!(
            Rle::decompress(&compressed(9, 9, "0`````````0")),
            Err(RleError::CountTooLong { index: 1 })
        ));
        // A single count of -1.
        assert!(matches!(
            Rle::decompress(&compressed(1, 1, "O")),
            Err(RleError::CountOutOfRange {
                index: 0,
                value: -1
            })
        ));
        assert!(matches!(
            Rle::decompress(&compressed(1, 1, "é")),
            Err(RleError::BadCharacter { found: 'é', .. })
        ));
    }

    #[test]
    fn serializes_like_coco() {
        let c = compressed(10, 8, "S11;0e0");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"size":[10,8],"counts":"S11;0e0"}"#);
    }

    fn arb_mask() -> impl Strategy<Value = Mask> {
        (0u32..12, 0u32..12, 0.0..1.0f64).prop_flat_map(|(w, h, density)| {
            let n = (w * h) as usize;
            proptest::collection::vec(proptest::bool::weighted(density), n).prop_map(move |bits| {
                Mask {
                    width: w,
                    height: h,
                    data: bits.into_iter().map(u8::from).collect(),
                }
            })
        })
    }

    proptest! {
        #[test]
        fn round_trips_through_the_string_form(mask in arb_mask()) {
            let rle = Rle::from_mask(&mask);
            let back = Rle::decompress(&rle.compress()).unwrap();
            prop_assert_eq!(&back, &rle);
            prop_assert_eq!(back.to_mask(), mask.clone());
            prop_assert_eq!(rle.area(), mask.area());
            prop_assert_eq!(rle.bbox(), mask.bbox());
        }

        #[test]
        fn large_counts_round_trip(counts in proptest::collection::vec(0u32..=u32::MAX, 0..8)) {
            // Wide 1-row "images" make any counts legal; this exercises deltas and sign groups.
            let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
            prop_assume!(total <= u64::from(u32::MAX));
            let rle = Rle::from_counts(1, total as u32, counts).unwrap();
            prop_assert_eq!(Rle::decompress(&rle.compress()).unwrap(), rle);
        }

        #[test]
        fn label_image_encoding_equals_per_label_masks(
            (w, h, labels) in (1u32..10, 1u32..10).prop_flat_map(|(w, h)| {
                (Just(w), Just(h), proptest::collection::vec(0u16..4, (w * h) as usize))
            })
        ) {
            let rles = encode_labels(w, h, &labels).unwrap();
            for label in 1..4u16 {
                let mut m = Mask::new(w, h);
                for (i, &l) in labels.iter().enumerate() {
                    m.set(i as u32 % w, i as u32 / w, l == label);
                }
                match rles.get(&label) {
                    Some(rle) => prop_assert_eq!(rle, &Rle::from_mask(&m)),
                    None => prop_assert!(m.is_empty()),
                }
            }
            prop_assert!(encode_labels(w, h, &labels[1..]).is_err());
        }

        #[test]
        fn decompress_never_panics(counts in ".{0,40}", h in 0u32..20, w in 0u32..20) {
            if let Ok(rle) = Rle::decompress(&compressed(h, w, &counts)) {
                prop_assert_eq!(rle.to_mask().area(), rle.area());
                let _ = rle.bbox();
            }
        }

        #[test]
        fn decompress_never_panics_on_valid_alphabet(counts in "[0-o]{0,40}", h in 0u32..20, w in 0u32..20) {
            let _ = Rle::decompress(&compressed(h, w, &counts)).map(|r| r.bbox());
        }
    }
}
