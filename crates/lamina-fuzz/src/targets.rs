//! One function per fuzz target. A panic is a finding: either the parser itself panicked, or it accepted
//! something that breaks a promise stated in the `assert!` that fired.

use lamina_core::bundle::{instance_problems, parse_bundle, validate, Bundle};
use lamina_core::coco::{bundle_to_coco, CocoOptions};
use lamina_core::image_header::{check_image_header, MAX_PIXELS, MAX_SIDE_PX};
use lamina_core::image_list::parse_manifest;
use lamina_core::labels::{Instance, InstanceStatus, LabelStatus, Provenance, Tool};
use lamina_core::model_manifest::{sha256_hex, ModelManifest};
use lamina_core::review::Stage;
use lamina_core::rle::{CompressedRle, Rle};
use lamina_sync::batch::parse_batch_manifest;
use lamina_sync::layout::fragment_key;
use lamina_sync::{AssetLabels, Decision, Endpoint, Fragment, Ledger, LocalAsset, S3Location};

/// A fuzz target: arbitrary bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target by the name its corpus folder has.
pub const TARGETS: [(&str, Target); 9] = [
    ("fragment", fragment),
    ("ledger", ledger),
    ("bundle", bundle),
    ("manifest", manifest),
    ("model_manifest", model_manifest),
    ("listing", listing),
    ("rle", rle),
    ("image_header", image_header),
    ("interop", crate::interop::interop),
];

/// Masks up to this many pixels are decoded in full (larger ones only have their counts checked), so
/// one input never takes the fuzzer more than milliseconds.
const DECODE_PIXELS: u64 = 1 << 20;

/// The batch every fuzzed fragment claims to be from.
const BATCH: &str = "fuzz";

/// A pulled fragment: accepted only with masks that decode to the image's size, and re-readable as
/// written.
pub fn fragment(data: &[u8]) {
    // The key names the labeler and the content's hash; take both from the input so the checks behind
    // them are reached rather than refusing everything at the key.
    let labeler = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("labeler")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "alice".into());
    let key = fragment_key(BATCH, &labeler, "2026-01-01T00:00:00Z", &sha256_hex(data));
    let Ok(parsed) = Fragment::parse(&key, BATCH, data) else {
        return;
    };
    for asset in &parsed.assets {
        let first = asset.instances.first().map(|i| i.mask.size);
        for inst in &asset.instances {
            assert_eq!(
                Some(inst.mask.size),
                asset.image.as_ref().map(|i| [i.height, i.width]).or(first),
                "an accepted label's mask is the image's size"
            );
            let [h, w] = inst.mask.size;
            assert!(instance_problems(inst, w, h).is_empty());
            decode_if_small(&inst.mask);
        }
    }
    let bytes = parsed.to_bytes();
    match Fragment::parse(&parsed.key_for(&bytes), BATCH, &bytes) {
        Ok(again) => assert_eq!(again, parsed, "a fragment reads back as written"),
        Err(e) => panic!("an accepted fragment, written again, is refused: {e}"),
    }
}

/// Histories of pushes read in two orders: every device computes the same heads, and nothing is lost
/// (a revision is a head or was named as a parent). The same pushes made one after another, each from
/// the last (one labeler editing, undoing, editing again): the last push is the one head, and a device
/// that last saw any earlier version takes it.
pub fn ledger(data: &[u8]) {
    const IMAGES: [&str; 2] = ["img-0", "img-1"];
    let steps: Vec<&[u8]> = data.chunks_exact(4).take(48).collect();
    for linear in [false, true] {
        let (pushed, revisions) = history(&steps, linear);
        let mut forward = Ledger::default();
        for (key, f) in &pushed {
            forward.record(key, f);
        }
        let mut backward = Ledger::default();
        for (key, f) in pushed.iter().rev() {
            backward.record(key, f);
        }
        for (i, image) in IMAGES.iter().enumerate() {
            let heads = forward.heads(image);
            assert_eq!(
                heads,
                backward.heads(image),
                "heads do not depend on reading order"
            );
            let named: std::collections::BTreeSet<&str> = pushed
                .iter()
                .flat_map(|(_, f)| f.assets.iter())
                .filter(|a| a.asset_id == *image)
                .flat_map(|a| a.parents.iter().map(String::as_str))
                .collect();
            for revision in &revisions[i] {
                assert!(
                    heads.iter().any(|h| h.revision == *revision)
                        || named.contains(revision.as_str()),
                    "a revision nobody replaced is not lost"
                );
            }
            let Some(last) = revisions[i].last() else {
                continue;
            };
            if !linear {
                continue;
            }
            let heads: Vec<&str> = heads.iter().map(|h| h.revision.as_str()).collect();
            assert_eq!(
                heads,
                [last.as_str()],
                "the last of a chain of edits is the one head"
            );
            for base in &revisions[i] {
                let device = LocalAsset {
                    base: Some(base.clone()),
                    revision: base.clone(),
                    dirty: false,
                    sent: vec![],
                };
                match forward.decide(image, &device) {
                    Decision::UpToDate => {
                        assert_eq!(base, last, "a device on an older version is told to update")
                    }
                    Decision::Adopt(entry) => assert_eq!(entry.revision, *last),
                    other => panic!("a device on an earlier version of a chain gets {other:?}"),
                }
            }
        }
    }
}

/// Fragments for 4-byte steps (labeler, image, two parent picks, content): with `linear`, each push
/// names the image's previous push as its parent instead of the picks.
fn history(steps: &[&[u8]], linear: bool) -> (Vec<(String, Fragment)>, Vec<Vec<String>>) {
    const LABELERS: [&str; 3] = ["alice", "bob", "carol"];
    let mut pushed = Vec::new();
    let mut revisions: Vec<Vec<String>> = vec![Vec::new(); 2];
    for (n, step) in steps.iter().enumerate() {
        let image = usize::from(step[1]) % 2;
        let known = &revisions[image];
        let parents: Vec<String> = if linear {
            known.last().cloned().into_iter().collect()
        } else {
            // Two picks among the revisions of this image so far (a pick past them picks none).
            [step[2] >> 4, step[2] & 0x0f]
                .iter()
                .filter_map(|&p| known.get(usize::from(p)).cloned())
                .collect()
        };
        let asset_id = format!("img-{image}");
        let status = if step[3] & 0x80 == 0 {
            LabelStatus::InProgress
        } else {
            LabelStatus::Submitted
        };
        let asset = AssetLabels::new(
            asset_id.clone(),
            parents,
            status,
            labels(&asset_id, step[3]),
        );
        revisions[image].push(asset.revision.clone());
        let labeler = LABELERS[usize::from(step[0]) % LABELERS.len()];
        let created = format!("2026-01-01T00:{:02}:{:02}Z", n / 60, n % 60);
        let Ok(fragment) = Fragment::new(BATCH, labeler, &created, vec![asset]) else {
            panic!("fixed batch and labeler ids are valid");
        };
        pushed.push((fragment.key_for(&fragment.to_bytes()), fragment));
    }
    (pushed, revisions)
}

/// A label bundle: accepted only valid, and the same after writing and reading it again; exports to COCO.
pub fn bundle(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_bundle(text) else {
        return;
    };
    assert!(validate(&parsed).is_empty(), "an accepted bundle is valid");
    match parse_bundle(&parsed.to_json()) {
        Ok(again) => assert_eq!(again, parsed, "a bundle reads back as written"),
        Err(e) => panic!("an accepted bundle, written again, is refused: {e}"),
    }
    let _ = parsed.only_stage(Stage::Done);
    if bundle_pixels(&parsed) <= DECODE_PIXELS {
        for polygons in [false, true] {
            let options = CocoOptions {
                polygons,
                ..CocoOptions::default()
            };
            let _ = bundle_to_coco(&parsed, &options);
        }
    }
}

/// An image manifest (CSV or JSON, told apart by the first character) and a batch manifest.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = parse_manifest(&text) {
        assert!(!m.entries.is_empty(), "an accepted manifest names an image");
    }
    let _ = parse_batch_manifest(BATCH, &text);
}

/// A model manifest: accepted only consistent (the low-res mask is 4x the embedding side).
pub fn model_manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = ModelManifest::parse(&text) {
        let [one, _, side, _] = m.embedding_shape;
        assert_eq!(one, 1);
        assert_eq!(m.low_res_mask_size as usize, 4 * side);
    }
}

/// A folder listing, as S3 (ListObjectsV2 XML) or a WebDAV-style JSON index: the first byte picks which.
pub fn listing(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let folder = "batches/fuzz/labels/";
    let endpoint = if kind % 2 == 0 {
        Endpoint::S3 {
            location: S3Location {
                endpoint: "http://127.0.0.1:3900".into(),
                bucket: "lamina".into(),
                region: "garage".into(),
                path_style: true,
                prefix: "team/".into(),
            },
            credentials: None,
        }
    } else {
        Endpoint::Http {
            base_url: "http://127.0.0.1:8080/".into(),
            token: None,
            writable: true,
        }
    };
    let Ok(found) = endpoint.parse_listing(folder, body) else {
        return;
    };
    if let Endpoint::Http { .. } = endpoint {
        // A JSON index names entries of this folder only: no `..`, no path into another folder.
        for key in found.keys.iter().chain(&found.folders) {
            let rest = key.strip_prefix(folder).unwrap_or_default();
            assert!(!rest.is_empty(), "listed `{key}` is in the folder");
            assert!(
                !rest.trim_end_matches('/').contains('/') && rest != "../" && rest != "./",
                "listed `{key}` stays in the folder"
            );
        }
    }
}

/// A COCO RLE string with a size from the first four bytes: decodes to exactly that many pixels, and
/// compresses back to an equal string.
pub fn rle(data: &[u8]) {
    let [h0, h1, w0, w1, rest @ ..] = data else {
        return;
    };
    let Ok(counts) = std::str::from_utf8(rest) else {
        return;
    };
    let size = [
        u32::from(u16::from_le_bytes([*h0, *h1])),
        u32::from(u16::from_le_bytes([*w0, *w1])),
    ];
    let compressed = CompressedRle {
        size,
        counts: counts.to_owned(),
    };
    let Ok(decoded) = Rle::decompress(&compressed) else {
        return;
    };
    let pixels = u64::from(size[0]) * u64::from(size[1]);
    assert_eq!(
        decoded.counts.iter().map(|&c| u64::from(c)).sum::<u64>(),
        pixels
    );
    assert!(decoded.area() <= pixels);
    let [x, y, w, h] = decoded.bbox();
    assert!(
        x + w <= size[1] && y + h <= size[0],
        "the bbox is inside the mask"
    );
    match Rle::decompress(&decoded.compress()) {
        Ok(again) => assert_eq!(
            again.to_mask(),
            decoded.to_mask(),
            "compressing keeps the mask"
        ),
        Err(e) => panic!("a decoded RLE, compressed again, is refused: {e}"),
    }
    decode_if_small(&compressed);
}

/// An image file's first bytes: a size the header check accepts is within the limits, and the decoder
/// (the one the worker runs) never produces an image of another size.
pub fn image_header(data: &[u8]) {
    let Ok(header) = check_image_header(data) else {
        return;
    };
    assert!(header.width <= MAX_SIDE_PX && header.height <= MAX_SIDE_PX);
    assert!(u64::from(header.width) * u64::from(header.height) <= MAX_PIXELS);
    if u64::from(header.width) * u64::from(header.height) > DECODE_PIXELS {
        return;
    }
    if let Ok(img) = image::load_from_memory(data) {
        assert_eq!(
            (img.width(), img.height()),
            (header.width, header.height),
            "the decoded image has the size its header promised"
        );
    }
}

/// Decodes a mask that is small enough and checks it has the size it claims, and that the area and bbox
/// read from its counts (which need not be canonical: zero-length runs are legal) are the pixels'.
fn decode_if_small(mask: &CompressedRle) {
    let [h, w] = mask.size;
    if u64::from(h) * u64::from(w) > DECODE_PIXELS {
        return;
    }
    let Ok(rle) = Rle::decompress(mask) else {
        return;
    };
    let decoded = rle.to_mask();
    assert_eq!((decoded.height, decoded.width), (h, w));
    let canonical = Rle::from_mask(&decoded);
    assert_eq!(canonical.area(), rle.area(), "the area is the mask's");
    assert_eq!(canonical.bbox(), rle.bbox(), "the bbox is the mask's");
}

fn bundle_pixels(bundle: &Bundle) -> u64 {
    bundle
        .assets
        .iter()
        .map(|a| u64::from(a.width) * u64::from(a.height))
        .sum()
}

/// A few labels on a 4x4 image whose content depends on `code` (so equal content happens too).
fn labels(image: &str, code: u8) -> Vec<Instance> {
    (0..=usize::from(code % 3))
        .map(|k| Instance {
            id: format!("i{k}"),
            asset_id: image.into(),
            class_id: ["neoplastic", "dead", "connective"][(usize::from(code >> 2) + k) % 3].into(),
            mask: CompressedRle {
                size: [4, 4],
                counts: "02>".into(),
            },
            bbox: [0, 0, 1, 2],
            area: 2,
            provenance: Provenance {
                tool: Tool::Brush,
                prompts: vec![],
                model_id: None,
                author: None,
                created: String::new(),
                updated: String::new(),
                score: None,
            },
            status: InstanceStatus::default(),
        })
        .collect()
}
