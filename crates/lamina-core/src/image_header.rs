//! Checks an image file by its header before anything decodes it.
//!
//! A 30000x30000 PNG is a few kilobytes on disk and 3.6 GB once decoded: refusing by header keeps a
//! decompression bomb from taking the tab down.

use imagesize::ImageType;

/// Longest side a labeling canvas can hold (Chromium's canvas limit is 16384 per side too).
pub const MAX_SIDE_PX: u32 = 16_384;
/// 100 MP: 400 MB of RGBA, about what a tab can decode without being killed.
pub const MAX_PIXELS: u64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Tiff,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Tiff => "image/tiff",
        }
    }

    /// Browsers display PNG and JPEG themselves; TIFF has to be converted first.
    pub fn browser_displays(self) -> bool {
        !matches!(self, ImageFormat::Tiff)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("the file is empty")]
    Empty,
    #[error("not a PNG, JPEG or TIFF image")]
    NotAnImage,
    #[error("{0} images are not supported (use PNG, JPEG or TIFF)")]
    Unsupported(String),
    #[error("the image header is damaged: {0}")]
    Corrupt(String),
    #[error(
        "the image is {width}x{height} pixels, larger than Lamina opens ({MAX_SIDE_PX} px per side, {} MP); \
         tile it first",
        MAX_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
}

/// Reads format and size from the first bytes of a file and refuses what must not be decoded.
pub fn check_image_header(bytes: &[u8]) -> Result<ImageHeader, HeaderError> {
    if bytes.is_empty() {
        return Err(HeaderError::Empty);
    }
    let format = match imagesize::image_type(bytes) {
        Ok(ImageType::Png) => ImageFormat::Png,
        Ok(ImageType::Jpeg) => ImageFormat::Jpeg,
        Ok(ImageType::Tiff) => ImageFormat::Tiff,
        Ok(other) => return Err(HeaderError::Unsupported(format!("{other:?}"))),
        Err(_) => return Err(HeaderError::NotAnImage),
    };
    let size = imagesize::blob_size(bytes).map_err(|e| HeaderError::Corrupt(e.to_string()))?;
    let (width, height) = (to_u32(size.width), to_u32(size.height));
    check_size(width, height)?;
    Ok(ImageHeader {
        format,
        width,
        height,
    })
}

/// Refuses an image size Lamina will not open (or hold labels for): empty, or over the limits.
pub fn check_size(width: u32, height: u32) -> Result<(), HeaderError> {
    if width == 0 || height == 0 {
        return Err(HeaderError::Corrupt(format!("size {width}x{height}")));
    }
    if width > MAX_SIDE_PX
        || height > MAX_SIDE_PX
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(HeaderError::TooLarge { width, height });
    }
    Ok(())
}

fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG signature and IHDR claiming the given size; no pixel data needed to be refused.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn reads_png_size() {
        let h = check_image_header(&png_header(256, 128)).unwrap();
        assert_eq!((h.format, h.width, h.height), (ImageFormat::Png, 256, 128));
    }

    #[test]
    fn refuses_a_30000_px_bomb_by_header() {
        let err = check_image_header(&png_header(30_000, 30_000)).unwrap_err();
        assert_eq!(
            err,
            HeaderError::TooLarge {
                width: 30_000,
                height: 30_000
            }
        );
        assert!(err.to_string().contains("30000x30000"));
    }

    #[test]
    fn refuses_too_many_pixels_even_within_the_side_limit() {
        assert!(matches!(
            check_image_header(&png_header(16_000, 16_000)),
            Err(HeaderError::TooLarge { .. })
        ));
    }

    #[test]
    fn names_non_images_and_empty_files() {
        assert_eq!(check_image_header(b""), Err(HeaderError::Empty));
        assert_eq!(
            check_image_header(b"id,url\n1,http://x/a.png\n"),
            Err(HeaderError::NotAnImage)
        );
    }
}
