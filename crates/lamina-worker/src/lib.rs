//! Lamina's Web Worker. The UI thread posts file bytes here; this checks the header, decodes the whole
//! image to prove it is sound, hashes it, and converts formats the browser cannot show (TIFF) to PNG.
//! The decode logic is plain Rust ([`decode`]) and is tested natively; only [`decode_image`] is glue.

use std::io::Cursor;

use image::{ImageFormat as Codec, ImageReader, Limits};
use lamina_core::image_header::{
    check_image_header, HeaderError, ImageFormat, MAX_PIXELS, MAX_SIDE_PX,
};
use lamina_core::worker_protocol::{Inspected, DISPLAY_FIELD};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;

pub mod runs;
pub mod sam;
pub mod yolo;

#[derive(Debug, PartialEq)]
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
    /// Hex sha256 of the bytes as given.
    pub sha256: String,
    /// A PNG to display and store instead of the original, when the browser cannot show the original.
    pub display_png: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the image data is damaged or truncated: {0}")]
    Corrupt(String),
    #[error("the image could not be converted for display: {0}")]
    Convert(String),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let header = check_image_header(bytes)?;
    let codec = match header.format {
        ImageFormat::Png => Codec::Png,
        ImageFormat::Jpeg => Codec::Jpeg,
        ImageFormat::Tiff => Codec::Tiff,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), codec);
    // The header check already refused bombs; the limits are the decoder's own second line of defence.
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE_PX);
    limits.max_image_height = Some(MAX_SIDE_PX);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if (image.width(), image.height()) != (header.width, header.height) {
        return Err(DecodeError::Corrupt(format!(
            "header says {}x{} but the data is {}x{}",
            header.width,
            header.height,
            image.width(),
            image.height()
        )));
    }
    let display_png = if header.format.browser_displays() {
        None
    } else {
        let mut png = Vec::new();
        image
            .to_rgba8()
            .write_to(&mut Cursor::new(&mut png), Codec::Png)
            .map_err(|e| DecodeError::Convert(e.to_string()))?;
        Some(png)
    };
    Ok(Decoded {
        width: header.width,
        height: header.height,
        format: header.format,
        sha256: sha256_hex(bytes),
        display_png,
    })
}

/// A pre-label run's settings from the request, checked.
pub(crate) fn prelabel_settings(
    json: &str,
) -> Result<lamina_core::worker_protocol::PrelabelSettings, JsError> {
    let settings: lamina_core::worker_protocol::PrelabelSettings = serde_json::from_str(json)
        .map_err(|e| JsError::new(&format!("bad pre-label settings: {e}")))?;
    settings.validate().map_err(|e| JsError::new(&e))?;
    Ok(settings)
}

/// Automatic mode's instances as the protocol carries them (RLE in image pixels).
pub(crate) fn found_instances(
    found: &[lamina_sam::auto::AutoInstance],
) -> Vec<lamina_core::worker_protocol::FoundInstance> {
    found
        .iter()
        .map(|f| {
            let rle = lamina_core::rle::Rle::from_mask(&f.mask_image);
            lamina_core::worker_protocol::FoundInstance {
                area: rle.area(),
                bbox: rle.bbox(),
                rle: rle.compress(),
                score: f.score,
                class: f.class as u32,
            }
        })
        .collect()
}

/// A protocol reply (`lamina_core::worker_protocol`) as a plain JS object, for `postMessage`.
pub(crate) fn to_reply<T: serde::Serialize>(value: &T) -> Result<js_sys::Object, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map(Into::into)
        .map_err(|e| JsError::new(&format!("could not build the worker's reply: {e}")))
}

/// Worker entry of `inspect`: an [`Inspected`], plus the converted PNG under [`DISPLAY_FIELD`] when the
/// browser cannot show the original; or a thrown error message.
#[wasm_bindgen]
pub fn decode_image(bytes: &[u8]) -> Result<JsValue, JsError> {
    let d = decode(bytes).map_err(|e| JsError::new(&e.to_string()))?;
    let mime = if d.display_png.is_some() {
        "image/png"
    } else {
        d.format.mime()
    };
    let out = to_reply(&Inspected {
        width: d.width,
        height: d.height,
        mime: mime.into(),
        source_mime: d.format.mime().into(),
        sha256: d.sha256,
    })?;
    if let Some(png) = d.display_png {
        let png = js_sys::Uint8Array::from(png.as_slice());
        js_sys::Reflect::set(&out, &JsValue::from_str(DISPLAY_FIELD), &png)
            .map_err(|_| JsError::new("could not build the worker's reply"))?;
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn encoded(codec: Codec) -> Vec<u8> {
        let img = RgbImage::from_fn(40, 30, |x, y| Rgb([x as u8 * 6, y as u8 * 8, 128]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), codec).unwrap();
        out
    }

    #[test]
    fn png_and_jpeg_are_shown_as_they_are() {
        for codec in [Codec::Png, Codec::Jpeg] {
            let d = decode(&encoded(codec)).unwrap();
            assert_eq!((d.width, d.height, d.display_png.is_none()), (40, 30, true));
            assert_eq!(d.sha256.len(), 64);
        }
    }

    #[test]
    fn tiff_is_converted_to_a_png_of_the_same_pixels() {
        let d = decode(&encoded(Codec::Tiff)).unwrap();
        assert_eq!(d.format, ImageFormat::Tiff);
        let png = d.display_png.unwrap();
        let back = image::load_from_memory_with_format(&png, Codec::Png)
            .unwrap()
            .to_rgb8();
        assert_eq!(back.get_pixel(10, 20), &Rgb([60, 160, 128]));
    }

    #[test]
    fn truncated_file_is_reported_as_damaged() {
        let png = encoded(Codec::Png);
        let err = decode(&png[..png.len() / 2]).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
