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
    let (header, image) = decode_pixels(bytes)?;
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

/// The header checked (bombs refused before decoding), then every pixel decoded.
fn decode_pixels(
    bytes: &[u8],
) -> Result<(lamina_core::image_header::ImageHeader, image::DynamicImage), DecodeError> {
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
    Ok((header, image))
}

/// The grid's thumbnail side, in image pixels (shown at about 112 CSS px, sharp on 1.25× screens).
pub const THUMB_SIDE_PX: u32 = 144;
/// Find-similar's colour histogram is taken at most this wide, the scale `lamina eval similar` measured.
const EMBEDDING_SIDE_PX: u32 = 256;
/// Joint RGB histogram levels per channel (8³ = 512 values), as measured.
pub const EMBEDDING_BINS: usize = 8;

/// An image's catalog view: a JPEG thumbnail that fits in [`THUMB_SIDE_PX`] and its colour embedding.
#[derive(Debug)]
pub struct Thumb {
    pub jpeg: Vec<u8>,
    pub embedding: Vec<f32>,
    pub width: u32,
    pub height: u32,
}

pub fn thumbnail(bytes: &[u8]) -> Result<Thumb, DecodeError> {
    let (header, image) = decode_pixels(bytes)?;
    let fit = |side: u32| {
        if image.width() > side || image.height() > side {
            image.thumbnail(side, side)
        } else {
            image.clone()
        }
    };
    let embedding = lamina_core::similar::colour_histogram(
        fit(EMBEDDING_SIDE_PX).to_rgb8().as_raw(),
        EMBEDDING_BINS,
    );
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 82)
        .encode_image(&fit(THUMB_SIDE_PX).to_rgb8())
        .map_err(|e| DecodeError::Convert(e.to_string()))?;
    Ok(Thumb {
        jpeg,
        embedding,
        width: header.width,
        height: header.height,
    })
}

/// Worker entry of `thumbnail`: a [`lamina_core::worker_protocol::Thumbnailed`] with the JPEG under
/// [`lamina_core::worker_protocol::THUMB_FIELD`]; or a thrown error message.
#[wasm_bindgen]
pub fn thumbnail_image(bytes: &[u8]) -> Result<JsValue, JsError> {
    let t = thumbnail(bytes).map_err(|e| JsError::new(&e.to_string()))?;
    let out = to_reply(&lamina_core::worker_protocol::Thumbnailed {
        embedding: t.embedding,
        width: t.width,
        height: t.height,
    })?;
    let jpeg = js_sys::Uint8Array::from(t.jpeg.as_slice());
    js_sys::Reflect::set(
        &out,
        &JsValue::from_str(lamina_core::worker_protocol::THUMB_FIELD),
        &jpeg,
    )
    .map_err(|_| JsError::new("could not build the worker's reply"))?;
    Ok(out.into())
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
    fn a_thumbnail_fits_the_grid_cell_keeps_the_shape_and_carries_the_colour_embedding() {
        let big = RgbImage::from_fn(600, 300, |x, _| {
            if x < 300 {
                Rgb([200, 40, 40])
            } else {
                Rgb([40, 40, 200])
            }
        });
        let mut png = Vec::new();
        big.write_to(&mut Cursor::new(&mut png), Codec::Png)
            .unwrap();
        let t = thumbnail(&png).unwrap();
        assert_eq!((t.width, t.height), (600, 300));
        let small = image::load_from_memory_with_format(&t.jpeg, Codec::Jpeg).unwrap();
        assert_eq!(
            (small.width(), small.height()),
            (THUMB_SIDE_PX, THUMB_SIDE_PX / 2)
        );
        assert_eq!(t.embedding.len(), EMBEDDING_BINS.pow(3));
        // Half red, half blue: two bins hold sqrt(1/2) each.
        let held: Vec<f32> = t.embedding.iter().copied().filter(|v| *v > 0.0).collect();
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(held.iter().all(|v| (v - 0.5f32.sqrt()).abs() < 0.01));
        assert!(
            thumbnail(&png[..png.len() / 2]).is_err(),
            "a damaged file gets no thumbnail"
        );
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
