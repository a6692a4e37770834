//! `manifest.json`, beside the ONNX files: what a model expects and how to check its files.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST_FORMAT: &str = "lamina.model";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderVariant {
    /// Returns `iou_predictions` and 256x256 `low_res_masks`; upsampling is done in Rust. Loads once.
    LowRes,
    /// SAM's standard decoder with `orig_im_size`: tract loads it only with the size pinned, so it is
    /// optimised once per image size.
    OrigSize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub file: String,
    pub sha256: String,
}

/// Which prompts a decoder serves. A model may ship a second decoder for prompts with a box, so that
/// training clicks further does not cost box masks (nuclei-v3); SAM's exports have one for all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderPrompts {
    /// Every prompt, unless the model also has a `box` decoder.
    #[default]
    All,
    /// Prompts that include a box (with or without points).
    Box,
}

impl DecoderPrompts {
    fn is_all(&self) -> bool {
        *self == DecoderPrompts::All
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecoderFile {
    pub variant: DecoderVariant,
    #[serde(default, skip_serializing_if = "DecoderPrompts::is_all")]
    pub prompts: DecoderPrompts,
    pub file: String,
    pub sha256: String,
}

/// How a model trained at one pixel scale sees an image: through `input_size` windows at the image's own
/// scale instead of SAM's whole-image resize (`lamina_sam::transform::window_layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows {
    /// Model pixels shared by neighbouring windows, so a nucleus on one window's edge lies well inside
    /// another.
    pub overlap: u32,
    /// The most windows one image may take (each is one encoder run and one embedding); bigger images are
    /// scaled down until they fit.
    pub max: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub family: String,
    pub input_size: u32,
    pub pixel_mean: [f32; 3],
    pub pixel_std: [f32; 3],
    /// `[1, C, E, E]`.
    pub embedding_shape: [usize; 4],
    pub low_res_mask_size: u32,
    #[serde(default)]
    pub mask_threshold: f32,
    pub encoder: ModelFile,
    pub decoders: Vec<DecoderFile>,
    /// Absent for SAM-family models, which resize the whole image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Windows>,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub license: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("the model manifest is not valid: {0}")]
    Json(String),
    #[error("not a Lamina model manifest (format {0:?}, expected \"lamina.model\")")]
    WrongFormat(String),
    #[error("the model manifest is inconsistent: {0}")]
    Inconsistent(String),
    #[error("{file} does not match the manifest (sha256 {actual}, expected {expected}): a wrong or damaged download")]
    Integrity {
        file: String,
        expected: String,
        actual: String,
    },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ModelManifest {
    pub fn parse(json: &str) -> Result<Self, ManifestError> {
        let m: ModelManifest =
            serde_json::from_str(json).map_err(|e| ManifestError::Json(e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(ManifestError::WrongFormat(m.format));
        }
        let [one, _c, e1, e2] = m.embedding_shape;
        if one != 1 || e1 != e2 || e1 == 0 {
            return Err(ManifestError::Inconsistent(format!(
                "embedding_shape {:?}",
                m.embedding_shape
            )));
        }
        if m.low_res_mask_size as usize != 4 * e1 {
            return Err(ManifestError::Inconsistent(format!(
                "low_res_mask_size {} is not 4 x the embedding side {e1}",
                m.low_res_mask_size
            )));
        }
        if m.input_size == 0 || m.pixel_std.iter().any(|s| *s <= 0.0) {
            return Err(ManifestError::Inconsistent(
                "input_size and pixel_std must be positive".into(),
            ));
        }
        if !m.decoders.iter().any(|d| d.prompts.is_all()) {
            return Err(ManifestError::Inconsistent(
                "no decoder for all prompts is listed".into(),
            ));
        }
        if let Some(w) = m.windows {
            if w.max == 0 || 2 * w.overlap >= m.input_size {
                return Err(ManifestError::Inconsistent(format!(
                    "windows: max {} must be at least 1 and overlap {} under half of input_size {}",
                    w.max, w.overlap, m.input_size
                )));
            }
            if m.decoder(DecoderVariant::LowRes).is_none() {
                return Err(ManifestError::Inconsistent(
                    "windows need a low_res decoder (masks are pasted from each window)".into(),
                ));
            }
        }
        // A box decoder pairs with the low_res decoder (the one `preferred_decoder` then picks), so every
        // loader can take "the manifest lists a box decoder" to mean "load it".
        if let Some(b) = m.box_decoder() {
            if b.variant != DecoderVariant::LowRes || m.decoder(DecoderVariant::LowRes).is_none() {
                return Err(ManifestError::Inconsistent(format!(
                    "box decoder {}: a box decoder needs low_res decoders",
                    b.file
                )));
            }
        }
        Ok(m)
    }

    /// The decoder of this variant for all prompts.
    pub fn decoder(&self, variant: DecoderVariant) -> Option<&DecoderFile> {
        self.decoders
            .iter()
            .find(|d| d.variant == variant && d.prompts.is_all())
    }

    /// The decoder for prompts with a box, if the model has one (always `low_res`).
    pub fn box_decoder(&self) -> Option<&DecoderFile> {
        self.decoders
            .iter()
            .find(|d| d.prompts == DecoderPrompts::Box)
    }

    /// The decoder to use when the caller has no preference: the one that loads once.
    pub fn preferred_decoder(&self) -> &DecoderFile {
        self.decoder(DecoderVariant::LowRes)
            .or_else(|| self.decoders.iter().find(|d| d.prompts.is_all()))
            .unwrap_or(&self.decoders[0])
    }

    /// Checks a downloaded or cached file against the manifest's sha256.
    pub fn verify(file: &str, expected_sha256: &str, bytes: &[u8]) -> Result<(), ManifestError> {
        let actual = sha256_hex(bytes);
        if actual.eq_ignore_ascii_case(expected_sha256) {
            Ok(())
        } else {
            Err(ManifestError::Integrity {
                file: file.to_owned(),
                expected: expected_sha256.to_owned(),
                actual,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json(low_res: u32) -> String {
        format!(
            r#"{{"format":"lamina.model","version":1,"id":"m","family":"sam","input_size":1024,
            "pixel_mean":[1,2,3],"pixel_std":[1,1,1],"embedding_shape":[1,32,64,64],
            "low_res_mask_size":{low_res},"encoder":{{"file":"e.onnx","sha256":"00"}},
            "decoders":[{{"variant":"orig_size","file":"d.onnx","sha256":"00"}}]}}"#
        )
    }

    #[test]
    fn parses_and_checks_consistency() {
        let m = ModelManifest::parse(&manifest_json(256)).unwrap();
        assert_eq!(m.preferred_decoder().variant, DecoderVariant::OrigSize);
        assert!(matches!(
            ModelManifest::parse(&manifest_json(200)),
            Err(ManifestError::Inconsistent(_))
        ));
        assert!(matches!(
            ModelManifest::parse("{}"),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn windows_are_optional_and_checked() {
        assert_eq!(
            ModelManifest::parse(&manifest_json(256)).unwrap().windows,
            None
        );
        let low_res = manifest_json(256).replace("orig_size", "low_res");
        let with =
            |w: &str| low_res.replace(r#""decoders""#, &format!(r#""windows":{w},"decoders""#));
        let m = ModelManifest::parse(&with(r#"{"overlap":64,"max":36}"#)).unwrap();
        assert_eq!(
            m.windows,
            Some(Windows {
                overlap: 64,
                max: 36
            })
        );
        for bad in [r#"{"overlap":512,"max":36}"#, r#"{"overlap":64,"max":0}"#] {
            assert!(
                matches!(
                    ModelManifest::parse(&with(bad)),
                    Err(ManifestError::Inconsistent(_))
                ),
                "{bad}"
            );
        }
        // masks are pasted from each window's low-res logits, which orig_size decoders do not return
        let orig = manifest_json(256).replace(
            r#""decoders""#,
            r#""windows":{"overlap":64,"max":36},"decoders""#,
        );
        assert!(matches!(
            ModelManifest::parse(&orig),
            Err(ManifestError::Inconsistent(_))
        ));
    }

    #[test]
    fn a_box_decoder_is_found_apart_from_the_main_one() {
        let json = |box_variant: &str| {
            manifest_json(256).replace(
                r#"[{"variant":"orig_size","file":"d.onnx","sha256":"00"}]"#,
                &format!(
                    r#"[{{"variant":"{box_variant}","prompts":"box","file":"b.onnx","sha256":"01"}},
                       {{"variant":"low_res","file":"d.onnx","sha256":"00"}}]"#
                ),
            )
        };
        let m = ModelManifest::parse(&json("low_res")).unwrap();
        // an orig_size decoder listed first does not hide the low_res one the box decoder pairs with
        let with_orig = json("low_res").replace(
            r#"{"variant":"low_res","file":"d.onnx""#,
            r#"{"variant":"orig_size","file":"o.onnx","sha256":"02"},{"variant":"low_res","file":"d.onnx""#,
        );
        assert_eq!(
            ModelManifest::parse(&with_orig)
                .unwrap()
                .preferred_decoder()
                .file,
            "d.onnx"
        );
        assert_eq!(m.preferred_decoder().file, "d.onnx");
        assert_eq!(m.decoder(DecoderVariant::LowRes).unwrap().file, "d.onnx");
        assert_eq!(m.box_decoder().unwrap().file, "b.onnx");
        assert!(ModelManifest::parse(&manifest_json(256))
            .unwrap()
            .box_decoder()
            .is_none());
        // a box decoder must load like the main one, and cannot be the only decoder
        assert!(matches!(
            ModelManifest::parse(&json("orig_size")),
            Err(ManifestError::Inconsistent(_))
        ));
        let only_box = manifest_json(256).replace(
            r#""variant":"orig_size","#,
            r#""variant":"low_res","prompts":"box","#,
        );
        assert!(matches!(
            ModelManifest::parse(&only_box),
            Err(ManifestError::Inconsistent(_))
        ));
    }

    #[test]
    fn integrity_names_the_file() {
        let err =
            ModelManifest::verify("encoder.onnx", &sha256_hex(b"right"), b"wrong").unwrap_err();
        assert!(err.to_string().contains("encoder.onnx does not match"));
        assert_eq!(
            ModelManifest::verify("x", &sha256_hex(b"ok").to_uppercase(), b"ok"),
            Ok(())
        );
    }
}
