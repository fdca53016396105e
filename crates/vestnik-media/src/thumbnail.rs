//! Previews of public-channel images (which are stored in the clear).
//! Decoding is bounded: big files are skipped and image dimensions and
//! allocations are capped, so a decompression bomb costs nothing.
use image::ImageReader;

/// Larger images get no preview (decoding holds them in memory).
pub(crate) const MAX_SOURCE_BYTES: i64 = 20 << 20;
const EDGE: u32 = 320;
const QUALITY: u8 = 75;

pub(crate) fn jpeg_preview(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let img = reader.decode().ok()?;
    let small = img.thumbnail(EDGE, EDGE).to_rgb8();
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY);
    small.write_with_encoder(encoder).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_small_jpegs_and_junk_gets_none() {
        let img = image::RgbImage::from_fn(1200, 800, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let jpeg = jpeg_preview(&png).expect("preview");
        let back = image::load_from_memory(&jpeg).expect("jpeg");
        assert_eq!((back.width(), back.height()), (320, 213));
        assert!(jpeg_preview(b"not an image").is_none());
    }
}
